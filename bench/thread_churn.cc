// thread-churn: threads that start, allocate, free and exit, in a loop. Each round starts
// --threads threads; each mallocs --blocks blocks of 16 B..8 KiB, frees three quarters of
// them, frees the blocks the previous round's thread of its index left (blocks of a thread
// that has exited: remote frees into abandoned regions), and exits leaving its last quarter
// for the next round. The main thread frees what the last round left.
//
//   bench_thread_churn [--rounds N] [--threads N] [--blocks N] [--seed N] [--delay-ms MS]
//                      [--name NAME]
//
// Prints one line:
//   RESULT name=thread-churn rounds=... threads=... ops=... seconds=... mops=...
//          peak_rss_kb=... rss_start_kb=... rss_after_kb=... delay_ms=... rss_delayed_kb=...
// (ops = blocks over all rounds; mops = million malloc+free pairs per second, thread
// creation and exit included; rss_start_kb before the first round, rss_after_kb once every
// block is freed and every thread has exited: what the allocator kept; rss_delayed_kb after
// --delay-ms (default 100) and a little more work, bench::idle_then_work.)
#include <pthread.h>

#include <vector>

#include "common.h"

namespace {

struct Job {
  pthread_t thread;
  uint64_t blocks = 0, seed = 0;
  std::vector<void*>* left_in = nullptr;   // the previous round's survivors: freed here
  std::vector<void*>* left_out = nullptr;  // this round's: freed by the next round
};

void* run(void* arg) {
  Job& j = *static_cast<Job*>(arg);
  bench::Rng rng(j.seed);
  std::vector<void*>& keep = *j.left_out;  // reserved by main: no allocation here
  for (uint64_t i = 0; i < j.blocks; ++i) {
    size_t n = 16 + rng.below(8192 - 16 + 1);
    auto* p = static_cast<char*>(malloc(n));
    if (!p) {
      fprintf(stderr, "bench_thread_churn: malloc(%zu) failed\n", n);
      exit(1);
    }
    p[0] = 1;
    p[n - 1] = 1;
    if (i % 4 == 0)
      keep.push_back(p);
    else
      free(p);
  }
  for (void* p : *j.left_in) free(p);
  j.left_in->clear();
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t rounds = 200, threads = 4, blocks = 4000, seed = 42, delay_ms = 100;
  const char* name = "thread-churn";
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--rounds", &rounds) ||
        bench::arg_u64(argc, argv, i, "--threads", &threads) ||
        bench::arg_u64(argc, argv, i, "--blocks", &blocks) ||
        bench::arg_u64(argc, argv, i, "--seed", &seed) ||
        bench::arg_u64(argc, argv, i, "--delay-ms", &delay_ms) ||
        bench::arg_str(argc, argv, i, "--name", &name))
      continue;
    fprintf(stderr,
            "usage: bench_thread_churn [--rounds N] [--threads N] [--blocks N] [--seed N] "
            "[--delay-ms MS] [--name NAME]\n");
    return 2;
  }
  if (threads == 0 || threads > 256 || rounds == 0) {
    fprintf(stderr, "bench_thread_churn: --threads 1..256, --rounds >= 1\n");
    return 2;
  }
  // Two generations of survivor lists, reserved up front so the threads never grow them.
  std::vector<std::vector<void*>> lists(2 * threads);
  for (auto& l : lists) l.reserve(blocks / 4 + 1);
  std::vector<Job> jobs(threads);
  long rss_start = bench::rss_kb();
  double t0 = bench::now_seconds();
  for (uint64_t r = 0; r < rounds; ++r) {
    for (uint64_t t = 0; t < threads; ++t) {
      Job& j = jobs[t];
      j.blocks = blocks;
      j.seed = seed * 1000003 + r * 257 + t;
      j.left_in = &lists[(r % 2) * threads + t];
      j.left_out = &lists[((r + 1) % 2) * threads + t];
      if (pthread_create(&j.thread, nullptr, run, &j) != 0) {
        fprintf(stderr, "bench_thread_churn: pthread_create failed\n");
        return 1;
      }
    }
    for (Job& j : jobs) pthread_join(j.thread, nullptr);
  }
  for (auto& l : lists) {
    for (void* p : l) free(p);
    l.clear();
  }
  double secs = bench::now_seconds() - t0;
  long peak = bench::peak_rss_kb();
  long after = bench::rss_kb();
  bench::idle_then_work(delay_ms);
  long delayed = bench::rss_kb();
  uint64_t total = rounds * threads * blocks;
  printf(
      "RESULT name=%s rounds=%llu threads=%llu ops=%llu seconds=%.6f mops=%.3f peak_rss_kb=%ld "
      "rss_start_kb=%ld rss_after_kb=%ld delay_ms=%llu rss_delayed_kb=%ld\n",
      name, static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(threads),
      static_cast<unsigned long long>(total), secs, static_cast<double>(total) / secs / 1e6, peak,
      rss_start, after, static_cast<unsigned long long>(delay_ms), delayed);
  return 0;
}
