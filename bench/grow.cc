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
//          ratio=... first_cpu_ns=... last_cpu_ns=... cpu_ratio=... seconds=... mops=...
//          peak_rss_kb=...
// (first_ns / last_ns: nanoseconds per malloc over the first / last `window` bytes
// (default 16 MiB) of blocks; ratio = last_ns / first_ns (1 is flat); the cpu_ figures
// are the same in the thread's CPU time (page faults included), which other jobs on a
// loaded machine do not inflate; seconds and mops (million mallocs per second) cover the
// whole fill.)
#include "common.h"

namespace {

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

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
  double c0 = thread_cpu_seconds(), c_first = 0, c_last_begin = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (i == in_window) {
      t_first = bench::now_seconds();
      c_first = thread_cpu_seconds();
    }
    if (i == count - in_window) {
      t_last_begin = bench::now_seconds();
      c_last_begin = thread_cpu_seconds();
    }
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
  double t1 = bench::now_seconds(), c1 = thread_cpu_seconds();

  const double n = static_cast<double>(in_window);
  double first_ns = (t_first - t0) * 1e9 / n, last_ns = (t1 - t_last_begin) * 1e9 / n;
  double first_cpu = (c_first - c0) * 1e9 / n, last_cpu = (c1 - c_last_begin) * 1e9 / n;
  printf(
      "RESULT name=grow size=%llu bytes=%llu count=%llu window_bytes=%llu first_ns=%.3f "
      "last_ns=%.3f ratio=%.3f first_cpu_ns=%.3f last_cpu_ns=%.3f cpu_ratio=%.3f seconds=%.6f "
      "mops=%.3f peak_rss_kb=%ld\n",
      (unsigned long long)size, (unsigned long long)bytes, (unsigned long long)count,
      (unsigned long long)window, first_ns, last_ns, last_ns / first_ns, first_cpu, last_cpu,
      last_cpu / first_cpu, t1 - t0, static_cast<double>(count) / (t1 - t0) / 1e6,
      bench::peak_rss_kb());
  return 0;
}
