// prodcons: producer/consumer with remote frees. The main thread (producer) mallocs `ops`
// blocks of random sizes across every class and hands them through a bounded lock-free
// single-producer single-consumer ring to a second thread (consumer), which reads the size the
// producer wrote into the block, writes the block's last byte and frees it. Every free is
// remote: the block was allocated by the other thread.
//
//   bench_prodcons [--ops N] [--ring N] [--seed N] [--name NAME]
//
// Sizes (fixed seed, the same sequence under every allocator): 60% 16..256 B, 25%
// 257..1024 B, 12% 1025 B..32 KiB, 3% 32 KiB+1..256 KiB, uniform within each band.
// --ring: slots in the ring (a power of two, default 1024): at most that many blocks are in
// flight. When the ring is full (empty) the producer (consumer) spins briefly, then yields.
//
// Prints one line:
//   RESULT name=prodcons ops=... ring=1024 seconds=... mops=... peak_rss_kb=...
//          rss_start_kb=... rss_after_kb=... bytes=...
// (ops = blocks; seconds covers the producer's first malloc to the consumer's last free;
// mops = million blocks (malloc+free pairs) per second; peak_rss_kb is the process's
// high-water mark, rss_start_kb the RSS before the run (consumer thread started),
// rss_after_kb once every block is freed and the consumer has exited; bytes = total bytes
// allocated.)
#include <emmintrin.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <atomic>

#include "common.h"

namespace {

size_t pick_size(bench::Rng& rng) {
  uint32_t band = rng.below(100);
  if (band < 60) return 16 + rng.below(241);
  if (band < 85) return 257 + rng.below(768);
  if (band < 97) return 1025 + rng.below(32768 - 1024);
  return 32769 + rng.below(262144 - 32768);
}

// Spins with pause a while, then yields: the machine may have fewer free cores than threads.
struct Backoff {
  unsigned n = 0;
  void wait() {
    if (++n < 64)
      _mm_pause();
    else
      sched_yield();
  }
};

struct Shared {
  alignas(64) std::atomic<uint64_t> head{0};  // next slot the consumer reads
  alignas(64) std::atomic<uint64_t> tail{0};  // next slot the producer writes
  alignas(64) std::atomic<bool> go{false};
  void** ring = nullptr;
  uint64_t mask = 0;
  uint64_t ops = 0;
  uint64_t bad = 0;  // blocks whose size field did not survive the hand-over
  uint64_t bytes = 0;
};

void* consumer(void* arg) {
  Shared& s = *static_cast<Shared*>(arg);
  while (!s.go.load(std::memory_order_acquire)) sched_yield();
  uint64_t head = 0, tail = 0, bad = 0, bytes = 0;
  for (; head < s.ops; ++head) {
    if (head == tail) {
      Backoff b;
      while ((tail = s.tail.load(std::memory_order_acquire)) == head) b.wait();
    }
    void* p = s.ring[head & s.mask];
    s.head.store(head + 1, std::memory_order_release);
    uint64_t size;
    memcpy(&size, p, sizeof size);  // reads what the producer wrote
    if (size < 16 || size > 262144)
      ++bad;
    else
      static_cast<volatile char*>(p)[size - 1] = 1;  // writes the last byte
    bytes += size;
    free(p);
  }
  s.bad = bad;
  s.bytes = bytes;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ops = 2'000'000, ring = 1024, seed = 0x5EED'0000'0000'0001ull;
  const char* name = "prodcons";
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--ops", &ops) ||
        bench::arg_u64(argc, argv, i, "--ring", &ring) ||
        bench::arg_u64(argc, argv, i, "--seed", &seed) ||
        bench::arg_str(argc, argv, i, "--name", &name))
      continue;
    fprintf(stderr, "usage: %s [--ops N] [--ring N] [--seed N] [--name NAME]\n", argv[0]);
    return 2;
  }
  if (ops == 0 || ring < 2 || ring > (1u << 24) || (ring & (ring - 1)) != 0) {
    fprintf(stderr, "bad parameters (--ring must be a power of two)\n");
    return 2;
  }

  // The ring comes from mmap, not malloc.
  size_t ring_bytes = ring * sizeof(void*);
  void* mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  static Shared s;
  s.ring = static_cast<void**>(mem);
  s.mask = ring - 1;
  s.ops = ops;
  pthread_t thread;
  if (pthread_create(&thread, nullptr, consumer, &s) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    return 1;
  }
  bench::Rng rng(seed);

  long rss_start = bench::rss_kb();
  double t0 = bench::now_seconds();
  s.go.store(true, std::memory_order_release);
  uint64_t head = 0;
  for (uint64_t tail = 0; tail < ops; ++tail) {
    size_t size = pick_size(rng);
    void* p = malloc(size);
    if (!p) {
      fprintf(stderr, "malloc(%zu) failed\n", size);
      return 1;
    }
    uint64_t size64 = size;
    memcpy(p, &size64, sizeof size64);  // touches the block; the consumer checks it
    if (tail - head == ring) {
      Backoff b;
      while (tail - (head = s.head.load(std::memory_order_acquire)) == ring) b.wait();
    }
    s.ring[tail & s.mask] = p;
    s.tail.store(tail + 1, std::memory_order_release);
  }
  pthread_join(thread, nullptr);
  double seconds = bench::now_seconds() - t0;

  long rss_after = bench::rss_kb();
  long peak = bench::peak_rss_kb(rss_after);
  munmap(mem, ring_bytes);
  if (s.bad) {
    fprintf(stderr, "%llu blocks arrived with a corrupt size field\n", (unsigned long long)s.bad);
    return 1;
  }

  printf(
      "RESULT name=%s ops=%llu ring=%llu seconds=%.6f mops=%.3f peak_rss_kb=%ld rss_start_kb=%ld "
      "rss_after_kb=%ld bytes=%llu\n",
      name, (unsigned long long)ops, (unsigned long long)ring, seconds,
      static_cast<double>(ops) / seconds / 1e6, peak, rss_start, rss_after,
      (unsigned long long)s.bytes);
  return 0;
}
