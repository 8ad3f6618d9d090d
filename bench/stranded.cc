// stranded: memory freed by other threads, of a size its owner no longer allocates. A
// builder thread mallocs `mb` MiB of 64-byte nodes (each written) and hands them to
// `workers` threads, which free them all; the builder then keeps working with 32-byte
// blocks only (a working set of 4096, replaced at random) for `ms` milliseconds. An
// allocator that takes remote frees back only when the owner allocates that size again
// keeps the nodes' memory until exit.
//
//   bench_stranded [--mb N] [--workers N] [--ms N] [--name NAME]
//
// Prints one line:
//   RESULT name=stranded mb=... workers=... ms=... seconds=... mops=... rss_start_kb=...
//          rss_peak_kb=... rss_freed_kb=... rss_after_kb=... peak_rss_kb=...
// (rss_freed_kb: right after the workers freed the nodes; rss_after_kb: at the end of the
// 32-byte phase; mops: million malloc+free pairs per second in that phase; seconds: the
// whole run.)
#include <pthread.h>

#include <atomic>
#include <vector>

#include "common.h"

namespace {

struct Work {
  void** nodes = nullptr;
  size_t begin = 0, end = 0;
};

void* worker(void* arg) {
  Work* w = static_cast<Work*>(arg);
  for (size_t i = w->begin; i < w->end; ++i) free(w->nodes[i]);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mb = 100, workers = 2, ms = 300;
  const char* name = "stranded";
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--mb", &mb) ||
        bench::arg_u64(argc, argv, i, "--workers", &workers) ||
        bench::arg_u64(argc, argv, i, "--ms", &ms) ||
        bench::arg_str(argc, argv, i, "--name", &name))
      continue;
    fprintf(stderr, "usage: %s [--mb N] [--workers N] [--ms N] [--name NAME]\n", argv[0]);
    return 2;
  }
  if (workers < 1) workers = 1;
  double t0 = bench::now_seconds();
  long rss_start = bench::rss_kb();
  size_t count = static_cast<size_t>(mb << 20) / 64;
  // The node table comes from mmap-sized malloc: freed before the measurements that matter.
  void** nodes = static_cast<void**>(malloc(count * sizeof(void*)));
  if (!nodes) return 1;
  for (size_t i = 0; i < count; ++i) {
    nodes[i] = malloc(64);
    if (!nodes[i]) return 1;
    memset(nodes[i], static_cast<int>(i), 64);
  }
  long rss_peak = bench::rss_kb();
  std::vector<Work> work(workers);
  std::vector<pthread_t> th(workers);
  for (uint64_t w = 0; w < workers; ++w) {
    work[w] = Work{nodes, count * w / workers, count * (w + 1) / workers};
    pthread_create(&th[w], nullptr, worker, &work[w]);
  }
  for (uint64_t w = 0; w < workers; ++w) pthread_join(th[w], nullptr);
  free(nodes);
  long rss_freed = bench::rss_kb();

  constexpr size_t kSet = 4096;
  std::vector<void*> set(kSet, nullptr);
  bench::Rng rng(42);
  uint64_t pairs = 0;
  double p0 = bench::now_seconds(), deadline = p0 + static_cast<double>(ms) / 1000.0, p1 = p0;
  while (p1 < deadline) {
    for (int k = 0; k < 4096; ++k) {
      size_t j = rng.below(kSet);
      free(set[j]);
      set[j] = malloc(32);
      if (!set[j]) return 1;
      static_cast<char*>(set[j])[0] = 1;
      ++pairs;
    }
    p1 = bench::now_seconds();
  }
  long rss_after = bench::rss_kb();
  for (void* p : set) free(p);
  double t1 = bench::now_seconds();
  printf(
      "RESULT name=%s mb=%llu workers=%llu ms=%llu seconds=%.6f mops=%.3f rss_start_kb=%ld "
      "rss_peak_kb=%ld rss_freed_kb=%ld rss_after_kb=%ld peak_rss_kb=%ld\n",
      name, (unsigned long long)mb, (unsigned long long)workers, (unsigned long long)ms, t1 - t0,
      static_cast<double>(pairs) / (p1 - p0) / 1e6, rss_start, rss_peak, rss_freed, rss_after,
      bench::peak_rss_kb(rss_peak));
  return 0;
}
