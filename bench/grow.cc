// grow: one thread fills the heap with `bytes` (default 1 GiB) of malloc(size) blocks
// (default 16) and keeps them all. Does the cost of a malloc grow with the heap? An
// allocator whose refills walk every region it owns gets slower as the heap grows; a flat
// one costs the same for the last blocks as for the first.
//
//   bench_grow [--bytes N] [--size S] [--window N]
//
// The blocks are chained through their first 8 bytes (each is touched; no pointer table
// adds to RSS). They are never freed: the process exits with them live.
//
// Prints one line:
//   RESULT name=grow size=16 bytes=... count=... window_bytes=... first_ns=... last_ns=...
//          ratio=... seconds=... mops=... peak_rss_kb=...
// (first_ns / last_ns: nanoseconds per malloc over the first / last `window` bytes
// (default 16 MiB) of blocks; ratio = last_ns / first_ns (1 is flat); seconds and mops
// (million mallocs per second) cover the whole fill.)
#include "common.h"

int main(int argc, char** argv) {
  uint64_t bytes = 1ull << 30, size = 16, window = 16ull << 20;
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--bytes", &bytes) ||
        bench::arg_u64(argc, argv, i, "--size", &size) ||
        bench::arg_u64(argc, argv, i, "--window", &window))
      continue;
    fprintf(stderr, "usage: %s [--bytes N] [--size S] [--window N]\n", argv[0]);
    return 2;
  }
  if (size < sizeof(void*)) size = sizeof(void*);
  const uint64_t count = bytes / size, in_window = window / size;
  if (in_window == 0 || 2 * in_window > count) {
    fprintf(stderr, "bad parameters: the two windows must fit in --bytes\n");
    return 2;
  }

  void* head = nullptr;
  void** tail = &head;
  double t0 = bench::now_seconds(), t_first = 0, t_last_begin = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (i == in_window) t_first = bench::now_seconds();
    if (i == count - in_window) t_last_begin = bench::now_seconds();
    void* p = malloc(size);
    if (!p) {
      fprintf(stderr, "malloc(%llu) failed after %llu blocks\n", (unsigned long long)size,
              (unsigned long long)i);
      return 1;
    }
    *tail = p;  // writes the block's first bytes: it is touched
    tail = static_cast<void**>(p);
  }
  *tail = nullptr;
  double t1 = bench::now_seconds();

  double first_ns = (t_first - t0) * 1e9 / static_cast<double>(in_window);
  double last_ns = (t1 - t_last_begin) * 1e9 / static_cast<double>(in_window);
  printf(
      "RESULT name=grow size=%llu bytes=%llu count=%llu window_bytes=%llu first_ns=%.3f "
      "last_ns=%.3f ratio=%.3f seconds=%.6f mops=%.3f peak_rss_kb=%ld\n",
      (unsigned long long)size, (unsigned long long)bytes, (unsigned long long)count,
      (unsigned long long)window, first_ns, last_ns, last_ns / first_ns, t1 - t0,
      static_cast<double>(count) / (t1 - t0) / 1e6, bench::peak_rss_kb());
  return 0;
}
