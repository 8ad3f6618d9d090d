/* Plain C, linked to hakmem::hakmem (libhakmem.so) and, from tests/install, built with
 * `pkg-config --cflags --libs hakmem`: malloc/free are hakmem's. Proof without the C++
 * inspect interface: blocks cross between malloc/free and hak_malloc/hak_free in both
 * directions (a foreign pointer would be a reported error, or a glibc abort), and
 * HAKMEM_ON_ERROR=report would count any error in hak_error_count(). */
#include <hakmem/hakmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "shared_user: CHECK failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                                    \
    }                                                                                \
  } while (0)

int main(void) {
  static const size_t sizes[] = {1, 24, 64, 500, 1024, 2000, 40000, 1 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    size_t s = sizes[i];
    char* volatile p = malloc(s);
    CHECK(p != NULL);
    if (!p) continue;
    memset(p, 'a', s);
    CHECK(hak_malloc_usable_size(p) >= s); /* hakmem knows malloc's block */
    hak_free(p);                           /* and takes it back */
    char* volatile q = hak_malloc(s);
    CHECK(q != NULL);
    if (!q) continue;
    memset(q, 'b', s);
    q = realloc(q, s * 2 + 1); /* realloc moves a hak_malloc block */
    CHECK(q != NULL && q[s - 1] == 'b');
    free(q);
  }
  /* Same size class, consecutive allocations: both in one 2 MiB hakmem region. */
  void* volatile x = malloc(48);
  void* volatile y = hak_malloc(48);
  CHECK(((uintptr_t)x >> 21) == ((uintptr_t)y >> 21));
  free(y);
  hak_free(x);
  CHECK(hak_error_count() == 0);
  if (failures) return 1;
  puts("shared_user: ok");
  return 0;
}
