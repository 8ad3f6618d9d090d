// large-churn: big blocks with random lifetimes. Each of T threads keeps its own working set
// of `ws` slots, filled before the clock starts; an operation picks a random slot, frees its
// block and mallocs one of a random size, log-uniform in [min, max] (64 KiB..8 MiB by
// default: about 2/7 of them are mid-class blocks, the rest large), and writes every page of
// it (one byte each 4 KiB, and the last byte). Everything is freed at the end.
//
//   bench_large_churn [--ws N] [--threads T] [--ops N] [--min S] [--max S] [--seed N]
//                     [--name NAME]
//
// --ops: operations per thread (default 20000). Each block carries a tag in its first and
// last bytes that its free checks, so an allocator that hands out overlapping blocks shows.
//
// Prints one line:
//   RESULT name=large-churn-16 ws=16 threads=1 ops=... seconds=... kops=... mops=...
//          cpu_seconds=... peak_rss_kb=... rss_start_kb=... rss_after_kb=...
// (ops = operations over all threads; seconds, kops (thousand operations per second) and
// mops (million) cover the operations, from the start of the threads until the last one is
// done: the free-all after them is not timed; cpu_seconds is the process's user + system
// time over the same span (on a loaded machine it moves less than the wall clock);
// peak_rss_kb is the process's high-water mark, rss_start_kb the RSS before the working sets
// are filled, rss_after_kb once every block is freed and the threads have exited.)
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "common.h"

namespace {

constexpr size_t kPage = 4096;

struct Worker {
  pthread_t thread;
  uint64_t ws = 0, ops = 0, seed = 0, min = 0, max = 0;
  uint64_t bad = 0;
  long rss_seen = 0;            // the highest RSS this thread sampled (see bench::peak_rss_kb)
  double end = 0, cpu_end = 0;  // when its operations were done
};

std::atomic<unsigned> g_ready{0}, g_done{0};
std::atomic<bool> g_go{false};

struct Block {
  unsigned char* p;
  size_t n;
  uint64_t tag;
};

// User and system CPU seconds of the whole process: on a loaded machine the CPU the
// threads used moves less than the wall clock.
double cpu_seconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

size_t pick_size(bench::Rng& rng, double lmin, double lrange) {
  double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
  return static_cast<size_t>(std::exp2(lmin + u * lrange));
}

bool make(Block& b, bench::Rng& rng, double lmin, double lrange, uint64_t tag) {
  b.n = pick_size(rng, lmin, lrange);
  b.p = static_cast<unsigned char*>(malloc(b.n));
  if (!b.p) {
    fprintf(stderr, "bench_large_churn: malloc(%zu) failed\n", b.n);
    return false;
  }
  b.tag = tag;
  for (size_t off = kPage; off < b.n; off += kPage) b.p[off] = static_cast<unsigned char>(off);
  memcpy(b.p, &tag, sizeof tag);
  b.p[b.n - 1] = static_cast<unsigned char>(tag);
  return true;
}

bool release(Block& b) {
  uint64_t tag;
  memcpy(&tag, b.p, sizeof tag);
  bool ok = tag == b.tag && b.p[b.n - 1] == static_cast<unsigned char>(b.tag);
  free(b.p);
  b.p = nullptr;
  return ok;
}

void* run(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  bench::Rng rng(w.seed);
  const double lmin = std::log2(static_cast<double>(w.min));
  const double lrange = std::log2(static_cast<double>(w.max)) - lmin;
  std::vector<Block> slots(w.ws);
  uint64_t tag = w.seed << 32;
  bool ok = true;
  for (Block& b : slots) ok = ok && make(b, rng, lmin, lrange, ++tag);
  g_ready.fetch_add(1);
  while (!g_go.load(std::memory_order_acquire)) sched_yield();
  for (uint64_t i = 0; i < w.ops && ok; ++i) {
    Block& b = slots[rng.below(static_cast<uint32_t>(w.ws))];
    if (!release(b)) ++w.bad;
    ok = make(b, rng, lmin, lrange, ++tag);
    if ((i & 63) == 0) {
      long r = bench::rss_kb();
      if (r > w.rss_seen) w.rss_seen = r;
    }
  }
  if (!ok) exit(1);
  // The clock stops when every thread has done its operations: the free-all is not timed.
  w.end = bench::now_seconds();
  w.cpu_end = cpu_seconds();
  g_done.fetch_add(1);
  while (g_done.load() < g_ready.load()) sched_yield();
  for (Block& b : slots)
    if (!release(b)) ++w.bad;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ws = 16, threads = 1, ops = 20000, min = 64 << 10, max = 8 << 20, seed = 42;
  const char* name = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--ws", &ws) ||
        bench::arg_u64(argc, argv, i, "--threads", &threads) ||
        bench::arg_u64(argc, argv, i, "--ops", &ops) ||
        bench::arg_u64(argc, argv, i, "--min", &min) ||
        bench::arg_u64(argc, argv, i, "--max", &max) ||
        bench::arg_u64(argc, argv, i, "--seed", &seed) ||
        bench::arg_str(argc, argv, i, "--name", &name))
      continue;
    fprintf(stderr,
            "usage: bench_large_churn [--ws N] [--threads T] [--ops N] [--min S] [--max S] "
            "[--seed N] [--name NAME]\n");
    return 2;
  }
  if (ws == 0 || ws > (1u << 20) || threads == 0 || threads > 64 || min < 16 || max < min) {
    fprintf(stderr, "bench_large_churn: bad parameters\n");
    return 2;
  }
  char default_name[48];
  if (threads > 1)
    snprintf(default_name, sizeof default_name, "large-churn-%llu-t%llu",
             static_cast<unsigned long long>(ws), static_cast<unsigned long long>(threads));
  else
    snprintf(default_name, sizeof default_name, "large-churn-%llu",
             static_cast<unsigned long long>(ws));
  if (!name) name = default_name;

  std::vector<Worker> workers(threads);
  long rss_start = bench::rss_kb();
  for (uint64_t i = 0; i < threads; ++i) {
    Worker& w = workers[i];
    w.ws = ws;
    w.ops = ops;
    w.min = min;
    w.max = max;
    w.seed = seed * 1000003 + i;
    if (pthread_create(&w.thread, nullptr, run, &w) != 0) {
      fprintf(stderr, "bench_large_churn: pthread_create failed\n");
      return 1;
    }
  }
  while (g_ready.load() < threads) sched_yield();
  double t0 = bench::now_seconds(), cpu0 = cpu_seconds();
  g_go.store(true, std::memory_order_release);
  uint64_t bad = 0;
  long seen = 0;
  for (Worker& w : workers) {
    pthread_join(w.thread, nullptr);
    bad += w.bad;
    if (w.rss_seen > seen) seen = w.rss_seen;
  }
  double end = 0, cpu_end = 0;
  for (Worker& w : workers) {
    if (w.end > end) end = w.end;
    if (w.cpu_end > cpu_end) cpu_end = w.cpu_end;
  }
  double secs = end - t0, cpu = cpu_end - cpu0;
  long peak = bench::peak_rss_kb(seen);
  long after = bench::rss_kb();
  if (bad) {
    fprintf(stderr, "bench_large_churn: %llu blocks came back changed\n",
            static_cast<unsigned long long>(bad));
    return 1;
  }
  uint64_t total = ops * threads;
  double rate = static_cast<double>(total) / secs;
  printf(
      "RESULT name=%s ws=%llu threads=%llu ops=%llu seconds=%.6f kops=%.3f mops=%.6f "
      "cpu_seconds=%.6f peak_rss_kb=%ld rss_start_kb=%ld rss_after_kb=%ld\n",
      name, static_cast<unsigned long long>(ws), static_cast<unsigned long long>(threads),
      static_cast<unsigned long long>(total), secs, rate / 1e3, rate / 1e6, cpu, peak, rss_start,
      after);
  return 0;
}
