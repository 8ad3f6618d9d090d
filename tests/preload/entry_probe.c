/* Run under LD_PRELOAD=libhakmem.so by preload.entry_points (test_entry_points.py): every
 * malloc-family entry point a program can reach is hakmem's, and the introspection ones
 * report hakmem's figures. Plain C, not linked to hakmem. Prints "mallinfo2 K=V ..."
 * (compared with the exit report by the test), the malloc_info XML, and "entry-done". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "entry_probe: CHECK failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                                    \
    }                                                                                \
  } while (0)

static const char* const kNames[] = {
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "cfree",
    "free_sized",
    "free_aligned_sized",
    "malloc_trim",
    "mallinfo",
    "mallinfo2",
    "malloc_stats",
    "malloc_info",
    "__libc_malloc",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_free",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
};

void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);

int main(void) {
  for (size_t i = 0; i < sizeof kNames / sizeof kNames[0]; ++i) {
    void* fn = dlsym(RTLD_DEFAULT, kNames[i]);
    Dl_info info;
    int ours = fn && dladdr(fn, &info) && info.dli_fname && strstr(info.dli_fname, "libhakmem");
    if (!ours) {
      fprintf(stderr, "entry_probe: %s resolves to %s, not libhakmem\n", kNames[i],
              fn && dladdr(fn, &info) && info.dli_fname ? info.dli_fname : "nothing");
      ++failures;
    }
  }

  /* glibc's other names hand out blocks the standard names accept, both ways. */
  free(__libc_malloc(100));
  __libc_free(malloc(100));
  free(__libc_calloc(10, 10));
  free(__libc_realloc(malloc(10), 5000));
  free(__libc_memalign(4096, 100));
  /* C23, not in glibc 2.36: looked up, so the probe links without them. */
  void (*free_sized)(void*, size_t) = (void (*)(void*, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  void (*free_aligned_sized)(void*, size_t, size_t) =
      (void (*)(void*, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  if (free_sized) free_sized(malloc(48), 48);
  if (free_aligned_sized) free_aligned_sized(aligned_alloc(64, 128), 64, 128);

  /* malloc_trim gives back the cached large run (and warm pages): 1, then nothing left. */
  void* big = malloc((size_t)4 << 20);
  memset(big, 1, (size_t)4 << 20);
  free(big);
  CHECK(malloc_trim(0) == 1);
  CHECK(malloc_trim(0) == 0);

  /* Known live blocks, then the figures; nothing allocates between here and the exit
   * report (stdout's buffer exists after this first line). */
  printf("start\n");
  static void* volatile keep[100]; /* volatile: the mallocs must happen */
  for (int i = 0; i < 100; ++i) keep[i] = malloc(1000);
  static void* volatile large;
  large = malloc((size_t)3 << 20);
  struct mallinfo2 m = mallinfo2();
  CHECK(m.uordblks >= 100 * 1000 + ((size_t)3 << 20));
  CHECK(m.hblkhd >= (size_t)3 << 20);
  CHECK(m.hblks >= 1);
  CHECK(m.arena == m.uordblks + m.fordblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo old = mallinfo(); /* the int version, still exported by glibc */
#pragma GCC diagnostic pop
  CHECK((size_t)old.uordblks == m.uordblks && (size_t)old.hblkhd == m.hblkhd);

  /* malloc_info: glibc's XML shape; options other than 0 are EINVAL. */
  static char xml[4096];
  FILE* f = fmemopen(xml, sizeof xml - 1, "w");
  CHECK(f && malloc_info(0, f) == 0);
  if (f) fclose(f);
  CHECK(strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">", 34) == 0);
  CHECK(strstr(xml, "<total type=\"mmap\"") && strstr(xml, "</malloc>\n"));
  errno = 0;
  CHECK(malloc_info(1, stdout) == -1 && errno == EINVAL);

  malloc_stats(); /* the text report, on stderr */

  m = mallinfo2();
  printf("mallinfo2 arena=%zu uordblks=%zu fordblks=%zu hblks=%zu hblkhd=%zu\n", m.arena,
         m.uordblks, m.fordblks, m.hblks, m.hblkhd);
  printf("entry-done\n");
  (void)large;
  return failures ? 1 : 0; /* keep[] and large stay live: the exit report shows them */
}
