// phase76: `count` (default 1M) malloc(size) (default 16), then free them all, in
// allocation order. Reports RSS at start, with everything allocated, and after the free.
// Does the allocator give the memory back to the OS?
//
//   bench_phase76 [--count N] [--size S]
//
// The blocks are chained through their first 8 bytes, so no pointer table adds to RSS.
// When hakmem is preloaded (hak_stats_print is found with dlsym; nothing links hakmem),
// its live regions at the three points are reported too.
//
// Prints one line:
//   RESULT name=phase76 count=... size=... alloc_seconds=... free_seconds=... seconds=...
//          rss_start_kb=... rss_peak_kb=... rss_after_kb=... peak_rss_kb=...
//          delay_ms=... rss_delayed_kb=...
//          [hak_regions_start=... hak_regions_peak=... hak_regions_after=...
//           hak_superslabs_live_after=... hak_superslabs_released=...]
#include <dlfcn.h>
#include <sys/mman.h>

#include "common.h"

namespace {

using StatsPrintFn = void (*)(int);

struct HakRegions {
  bool ok = false;
  unsigned long long superslab = 0, ultra = 0, mid = 0, large = 0;
  unsigned long long ss_live = 0, ss_released = 0;
  unsigned long long total() const { return superslab + ultra + mid + large; }
};

// Asks hakmem for its report (into a memfd, no heap use here) and picks out the lines
//   "  regions live: superslab A, ultra B, mid C, large D"
//   "  superslabs: L live, R released, ..."
HakRegions hak_regions(StatsPrintFn fn) {
  HakRegions r;
  if (!fn) return r;
  int fd = memfd_create("hakmem-stats", MFD_CLOEXEC);
  if (fd < 0) return r;
  fn(fd);
  char buf[4096];
  size_t used = 0;
  lseek(fd, 0, SEEK_SET);
  while (used + 1 < sizeof buf) {
    ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  buf[used] = '\0';
  if (const char* p = strstr(buf, "regions live:")) {
    r.ok = sscanf(p, "regions live: superslab %llu, ultra %llu, mid %llu, large %llu", &r.superslab,
                  &r.ultra, &r.mid, &r.large) == 4;
  }
  if (const char* p = strstr(buf, "superslabs:")) {
    if (sscanf(p, "superslabs: %llu live, %llu released", &r.ss_live, &r.ss_released) != 2)
      r.ok = false;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t count = 1'000'000, size = 16, delay_ms = 100;
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--count", &count) ||
        bench::arg_u64(argc, argv, i, "--size", &size) ||
        bench::arg_u64(argc, argv, i, "--delay-ms", &delay_ms))
      continue;
    fprintf(stderr, "usage: %s [--count N] [--size S] [--delay-ms MS]\n", argv[0]);
    return 2;
  }
  if (size < sizeof(void*)) size = sizeof(void*);

  auto stats_print = reinterpret_cast<StatsPrintFn>(dlsym(RTLD_DEFAULT, "hak_stats_print"));
  HakRegions h_start = hak_regions(stats_print);
  long rss_start = bench::rss_kb();

  double t0 = bench::now_seconds();
  void* head = nullptr;
  void** tail = &head;
  for (uint64_t i = 0; i < count; ++i) {
    void* p = malloc(size);
    if (!p) {
      fprintf(stderr, "malloc(%llu) failed\n", (unsigned long long)size);
      return 1;
    }
    *tail = p;  // writes the block's first bytes: it is touched
    tail = static_cast<void**>(p);
  }
  *tail = nullptr;
  double t1 = bench::now_seconds();

  long rss_peak = bench::rss_kb();
  HakRegions h_peak = hak_regions(stats_print);

  double t2 = bench::now_seconds();
  for (void* p = head; p;) {
    void* next = *static_cast<void**>(p);
    free(p);
    p = next;
  }
  double t3 = bench::now_seconds();

  long rss_after = bench::rss_kb();
  long peak = bench::peak_rss_kb(rss_peak);
  HakRegions h_after = hak_regions(stats_print);

  bench::idle_then_work(delay_ms);
  long rss_delayed = bench::rss_kb();

  printf(
      "RESULT name=phase76 count=%llu size=%llu alloc_seconds=%.6f free_seconds=%.6f seconds=%.6f "
      "rss_start_kb=%ld rss_peak_kb=%ld rss_after_kb=%ld peak_rss_kb=%ld delay_ms=%llu "
      "rss_delayed_kb=%ld",
      (unsigned long long)count, (unsigned long long)size, t1 - t0, t3 - t2, (t1 - t0) + (t3 - t2),
      rss_start, rss_peak, rss_after, peak, (unsigned long long)delay_ms, rss_delayed);
  if (h_start.ok && h_peak.ok && h_after.ok) {
    printf(
        " hak_regions_start=%llu hak_regions_peak=%llu hak_regions_after=%llu "
        "hak_superslabs_live_after=%llu "
        "hak_superslabs_released=%llu",
        h_start.total(), h_peak.total(), h_after.total(), h_after.ss_live,
        h_after.ss_released - h_start.ss_released);
  }
  printf("\n");
  return 0;
}
