// churn: the fast path in a tight loop. `ops` malloc(size)+free pairs, in rounds of `batch`:
// malloc `batch` blocks (touching the first byte of each), then free them in the same order.
// With --batch 1 (the default) every pair is malloc then free of the same block: the cost of
// the allocator's fastest path and nothing else.
//
//   bench_churn [--size S] [--ops N] [--batch N] [--keep N] [--name NAME] [--dry]
//
// --keep N: before the loop, malloc N blocks of the same size and keep them to the end, so
// the loop's blocks never leave their page or slab empty (default 0: an allocator that acts
// when a page empties may do so on every free).
//
// --dry: the same loop with malloc/free replaced by stand-ins that do nothing
// (bench::dry_malloc), for bench/instructions.sh to subtract; RESULT ends in dry=1.
//
// Prints one line:
//   RESULT name=tiny-churn size=16 batch=1 keep=0 ops=... seconds=... mops=... ns_per_pair=...
//          peak_rss_kb=... rss_start_kb=... rss_peak_kb=... rss_after_kb=...
// (ops = pairs done, rounded up to a whole number of batches; seconds, mops (million pairs
// per second) and ns_per_pair cover the loop; peak_rss_kb is the process's high-water mark,
// rss_start_kb the RSS before the loop, rss_peak_kb with the last batch allocated,
// rss_after_kb once it is freed (kept blocks still live).)
#include <sys/mman.h>

#include "common.h"

namespace {

template <bool Dry>
bool run_batches(void** blocks, uint64_t batch, uint64_t rounds, size_t size, long* rss_peak) {
  for (uint64_t r = 0; r < rounds; ++r) {
    for (uint64_t j = 0; j < batch; ++j) {
      void* p = Dry ? bench::dry_malloc(size) : malloc(size);
      if (!p) {
        fprintf(stderr, "malloc(%zu) failed\n", size);
        return false;
      }
      *static_cast<volatile char*>(p) = static_cast<char>(j);
      blocks[j] = p;
    }
    if (r + 1 == rounds) *rss_peak = bench::rss_kb();
    for (uint64_t j = 0; j < batch; ++j) {
      if constexpr (Dry)
        bench::dry_free(blocks[j]);
      else
        free(blocks[j]);
    }
  }
  return true;
}

// --batch 1: no block table, no inner loops; the pair as tight as it gets.
template <bool Dry>
bool run_pairs(uint64_t ops, size_t size) {
  for (uint64_t i = 0; i < ops; ++i) {
    void* p = Dry ? bench::dry_malloc(size) : malloc(size);
    if (!p) {
      fprintf(stderr, "malloc(%zu) failed\n", size);
      return false;
    }
    *static_cast<volatile char*>(p) = static_cast<char>(i);
    if constexpr (Dry)
      bench::dry_free(p);
    else
      free(p);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t size = 16, ops = 50'000'000, batch = 1, keep = 0;
  const char* name = "tiny-churn";
  bool dry = false;
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--size", &size) ||
        bench::arg_u64(argc, argv, i, "--ops", &ops) ||
        bench::arg_u64(argc, argv, i, "--batch", &batch) ||
        bench::arg_u64(argc, argv, i, "--keep", &keep) ||
        bench::arg_str(argc, argv, i, "--name", &name) || bench::arg_flag(argv, i, "--dry", &dry))
      continue;
    fprintf(stderr, "usage: %s [--size S] [--ops N] [--batch N] [--keep N] [--name NAME] [--dry]\n",
            argv[0]);
    return 2;
  }
  if (size == 0 || batch == 0 || batch > (1u << 26) || keep > (1u << 26) || ops == 0) {
    fprintf(stderr, "bad parameters\n");
    return 2;
  }
  const uint64_t rounds = (ops + batch - 1) / batch;
  ops = rounds * batch;

  // The block table (batch > 1) comes from mmap, not malloc.
  void** blocks = nullptr;
  size_t table_bytes = batch * sizeof(void*);
  if (batch > 1) {
    void* mem =
        mmap(nullptr, table_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    blocks = static_cast<void**>(mem);
  }

  // The kept blocks: chained through their first bytes (no table), freed after the loop.
  void* kept = nullptr;
  for (uint64_t k = 0; k < keep && !dry; ++k) {
    void* p = malloc(size < sizeof(void*) ? sizeof(void*) : size);
    if (!p) {
      fprintf(stderr, "malloc(%llu) failed\n", (unsigned long long)size);
      return 1;
    }
    *static_cast<void**>(p) = kept;
    kept = p;
  }

  long rss_start = bench::rss_kb();
  long rss_peak = rss_start;
  double t0 = bench::now_seconds();
  bool ok;
  if (batch == 1)
    ok = dry ? run_pairs<true>(ops, size) : run_pairs<false>(ops, size);
  else
    ok = dry ? run_batches<true>(blocks, batch, rounds, size, &rss_peak)
             : run_batches<false>(blocks, batch, rounds, size, &rss_peak);
  if (!ok) return 1;
  double seconds = bench::now_seconds() - t0;
  long rss_after = bench::rss_kb();
  if (batch == 1) rss_peak = rss_after;
  while (kept) {
    void* next = *static_cast<void**>(kept);
    free(kept);
    kept = next;
  }
  long peak = bench::peak_rss_kb(rss_peak);
  if (blocks) munmap(blocks, table_bytes);

  printf(
      "RESULT name=%s size=%llu batch=%llu keep=%llu ops=%llu seconds=%.6f mops=%.3f "
      "ns_per_pair=%.3f "
      "peak_rss_kb=%ld rss_start_kb=%ld rss_peak_kb=%ld rss_after_kb=%ld%s\n",
      name, (unsigned long long)size, (unsigned long long)batch, (unsigned long long)keep,
      (unsigned long long)ops, seconds, static_cast<double>(ops) / seconds / 1e6,
      seconds * 1e9 / static_cast<double>(ops), peak, rss_start, rss_peak, rss_after,
      dry ? " dry=1" : "");
  return 0;
}
