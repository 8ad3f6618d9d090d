/* Run under LD_PRELOAD=libhakmem.so by preload.stats_json. Plain C, not linked to hakmem:
 * it uses the malloc family only. Leaves a known set of blocks live at exit so the exit
 * report has known minimum contents:
 *   1000 blocks of 48 bytes   (tiny class 64)
 *   10 blocks of 3000 bytes   (mid class 3072)
 *   1 block of 4 MiB          (large)
 * With argument "badfree" it also frees a pointer malloc never returned (run it with
 * HAKMEM_ON_ERROR=report: the error is counted and the program continues). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* keep[1011];

int main(int argc, char** argv) {
  size_t k = 0;
  for (int i = 0; i < 1000; ++i) keep[k++] = malloc(48);
  for (int i = 0; i < 10; ++i) keep[k++] = malloc(3000);
  keep[k++] = malloc((size_t)4 << 20);
  for (size_t i = 0; i < k; ++i) {
    if (!keep[i]) {
      fprintf(stderr, "stats_probe: malloc failed\n");
      return 1;
    }
    memset(keep[i], (int)(i & 0xff), i < 1000 ? 48 : (i < 1010 ? 3000 : 4096));
  }
  /* Churn that leaves nothing live: many sizes, freed in reverse order. */
  static void* tmp[20000];
  for (int i = 0; i < 20000; ++i) tmp[i] = malloc((size_t)(i * 7919 % 5000) + 1);
  for (int i = 19999; i >= 0; --i) free(tmp[i]);
  for (size_t i = 0; i < 1000; ++i) {
    const unsigned char* p = keep[i];
    if (p[0] != (i & 0xff) || p[47] != (i & 0xff)) {
      fprintf(stderr, "stats_probe: block %zu changed behind our back\n", i);
      return 1;
    }
  }
  if (argc > 1 && strcmp(argv[1], "badfree") == 0) {
    static char not_from_malloc[256];
    char* volatile bad = not_from_malloc + 16; /* volatile: no compile-time warning */
    free(bad);
    puts("badfree-done");
  }
  puts("probe-done");
  return 0; /* the kept blocks stay live: the exit report must show them */
}
