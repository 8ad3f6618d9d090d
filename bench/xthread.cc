// xthread: every free is remote. N threads in a ring: thread i mallocs blocks of 16 B..4 KiB,
// writes the first and last byte, and hands each to thread i+1 through a single-producer
// single-consumer ring; thread i+1 checks the bytes and frees it. More threads than cores
// is intended: it measures contention and cache-line traffic between allocator threads.
//
//   bench_xthread [--threads N] [--ops N] [--ring N] [--seed N] [--name NAME]
//
// --ops: blocks per thread (default 1000000); --ring: slots per ring (a power of two, default
// 256). A thread whose outgoing ring is full frees from its incoming ring, then yields.
//
// Prints one line:
//   RESULT name=xthread-N threads=N ops=... seconds=... mops=... peak_rss_kb=...
//          rss_start_kb=... rss_after_kb=...
// (ops = blocks over all threads; mops = million malloc+free pairs per second, from the
// start of the threads to the last free; rss_after_kb once every thread has exited.)
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <vector>

#include "common.h"

namespace {

struct alignas(64) Ring {
  std::atomic<uint64_t> head{0};              // written by the consumer
  alignas(64) std::atomic<uint64_t> tail{0};  // written by the producer
  alignas(64) void** slots = nullptr;
  uint64_t mask = 0;

  bool push(void* p) {
    uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) > mask) return false;
    slots[t & mask] = p;
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
  void* pop() {
    uint64_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return nullptr;
    void* p = slots[h & mask];
    head.store(h + 1, std::memory_order_release);
    return p;
  }
};

struct Worker {
  pthread_t thread;
  unsigned index = 0;
  uint64_t ops = 0, seed = 0;
  Ring* out = nullptr;  // to the next thread
  Ring* in = nullptr;   // from the previous one
  uint64_t bad = 0;
};

std::atomic<unsigned> g_ready{0};
std::atomic<bool> g_go{false};

// The size is written in the block's first bytes, a marker in its last: the consumer checks
// both, so an allocator that hands out overlapping blocks shows.
void* make_block(bench::Rng& rng) {
  size_t n = 16 + rng.below(4096 - 16 + 1);
  auto* p = static_cast<unsigned char*>(malloc(n));
  if (!p) {
    fprintf(stderr, "bench_xthread: malloc(%zu) failed\n", n);
    exit(1);
  }
  memcpy(p, &n, sizeof n);
  p[n - 1] = 0xa5;
  return p;
}

bool free_block(void* v) {
  auto* p = static_cast<unsigned char*>(v);
  size_t n;
  memcpy(&n, p, sizeof n);
  bool ok = n >= 16 && n <= 4096 && p[n - 1] == 0xa5;
  free(p);
  return ok;
}

void* run(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  bench::Rng rng(w.seed);
  g_ready.fetch_add(1);
  while (!g_go.load(std::memory_order_acquire)) sched_yield();
  uint64_t made = 0, freed = 0;
  void* pending = nullptr;  // made, not yet handed on
  while (made < w.ops || pending || freed < w.ops) {
    bool progress = false;
    if (!pending && made < w.ops) {
      pending = make_block(rng);
      ++made;
    }
    if (pending && w.out->push(pending)) {
      pending = nullptr;
      progress = true;
    }
    // Free what has come in, a batch at a time.
    for (int k = 0; k < 32; ++k) {
      void* p = w.in->pop();
      if (!p) break;
      if (!free_block(p)) ++w.bad;
      ++freed;
      progress = true;
    }
    if (!progress) sched_yield();
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t threads = 4, ops = 1000000, ring = 256, seed = 42;
  const char* name = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--threads", &threads) ||
        bench::arg_u64(argc, argv, i, "--ops", &ops) ||
        bench::arg_u64(argc, argv, i, "--ring", &ring) ||
        bench::arg_u64(argc, argv, i, "--seed", &seed) ||
        bench::arg_str(argc, argv, i, "--name", &name))
      continue;
    fprintf(stderr,
            "usage: bench_xthread [--threads N] [--ops N] [--ring N] [--seed N] [--name NAME]\n");
    return 2;
  }
  if (threads < 2 || threads > 256 || ring == 0 || (ring & (ring - 1))) {
    fprintf(stderr, "bench_xthread: --threads 2..256, --ring a power of two\n");
    return 2;
  }
  char default_name[32];
  snprintf(default_name, sizeof default_name, "xthread-%llu",
           static_cast<unsigned long long>(threads));
  if (!name) name = default_name;

  std::vector<Ring> rings(threads);
  std::vector<void*> slot_memory(threads * ring);
  for (uint64_t i = 0; i < threads; ++i) {
    rings[i].slots = slot_memory.data() + i * ring;
    rings[i].mask = ring - 1;
  }
  std::vector<Worker> workers(threads);
  long rss_start = bench::rss_kb();
  for (uint64_t i = 0; i < threads; ++i) {
    Worker& w = workers[i];
    w.index = static_cast<unsigned>(i);
    w.ops = ops;
    w.seed = seed * 1000003 + i;
    w.out = &rings[i];
    w.in = &rings[(i + threads - 1) % threads];
    if (pthread_create(&w.thread, nullptr, run, &w) != 0) {
      fprintf(stderr, "bench_xthread: pthread_create failed\n");
      return 1;
    }
  }
  while (g_ready.load() < threads) sched_yield();
  double t0 = bench::now_seconds();
  g_go.store(true, std::memory_order_release);
  uint64_t bad = 0;
  for (Worker& w : workers) {
    pthread_join(w.thread, nullptr);
    bad += w.bad;
  }
  double secs = bench::now_seconds() - t0;
  long peak = bench::peak_rss_kb();
  long after = bench::rss_kb();
  if (bad) {
    fprintf(stderr, "bench_xthread: %llu blocks came back changed\n",
            static_cast<unsigned long long>(bad));
    return 1;
  }
  uint64_t total = ops * threads;
  printf(
      "RESULT name=%s threads=%llu ops=%llu seconds=%.6f mops=%.3f peak_rss_kb=%ld "
      "rss_start_kb=%ld "
      "rss_after_kb=%ld\n",
      name, static_cast<unsigned long long>(threads), static_cast<unsigned long long>(total), secs,
      static_cast<double>(total) / secs / 1e6, peak, rss_start, after);
  return 0;
}
