// mixed: one thread, a working set of `ws` slots, `ops` operations. Each operation picks a
// random slot, frees what is there (if anything) and mallocs a random size uniform in
// [min, max], touching the first byte. Everything is freed at the end.
//
//   bench_mixed [--ws N] [--ops N] [--min S] [--max S] [--seed N] [--name NAME] [--dry]
//
// --dry: the same loop (RNG, slots, touch) with malloc/free replaced by stand-ins that do
// nothing (bench::dry_malloc); bench/instructions.sh subtracts its instructions to count the
// allocator's alone. Its RESULT line ends in dry=1 and its mops mean nothing.
//
// Prints one line:
//   RESULT name=mixed ws=400 ops=10000000 min=16 max=1024 seconds=... mops=...
//          peak_rss_kb=... rss_start_kb=... rss_peak_kb=... rss_after_kb=...
// (seconds/mops cover the operations loop; peak_rss_kb is the process's high-water mark,
// rss_start_kb the RSS before the loop, rss_peak_kb with the working set full at the end,
// rss_after_kb after the free-all.)
#include <sys/mman.h>

#include "common.h"

namespace {

// The operations loop, compiled twice so the measured one carries no --dry test.
template <bool Dry>
bool run_ops(void** slots, uint32_t nslots, uint64_t ops, size_t min, uint32_t range,
             bench::Rng& rng) {
  for (uint64_t i = 0; i < ops; ++i) {
    uint32_t slot = rng.below(nslots);
    size_t size = min + rng.below(range);
    if (slots[slot]) {
      if constexpr (Dry)
        bench::dry_free(slots[slot]);
      else
        free(slots[slot]);
    }
    void* p = Dry ? bench::dry_malloc(size) : malloc(size);
    if (!p) {
      fprintf(stderr, "malloc(%zu) failed\n", size);
      return false;
    }
    *static_cast<volatile char*>(p) = static_cast<char>(i);
    slots[slot] = p;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ws = 400, ops = 10'000'000, min = 16, max = 1024, seed = 0x1234'5678'9ABC'DEF1ull;
  const char* name = "mixed";
  bool dry = false;
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--ws", &ws) ||
        bench::arg_u64(argc, argv, i, "--ops", &ops) ||
        bench::arg_u64(argc, argv, i, "--min", &min) ||
        bench::arg_u64(argc, argv, i, "--max", &max) ||
        bench::arg_u64(argc, argv, i, "--seed", &seed) ||
        bench::arg_str(argc, argv, i, "--name", &name) || bench::arg_flag(argv, i, "--dry", &dry))
      continue;
    fprintf(stderr,
            "usage: %s [--ws N] [--ops N] [--min S] [--max S] [--seed N] [--name NAME] [--dry]\n",
            argv[0]);
    return 2;
  }
  if (ws == 0 || ws > (1u << 30) || min == 0 || max < min || max - min >= (1ull << 32)) {
    fprintf(stderr, "bad parameters\n");
    return 2;
  }

  // The slot table comes from mmap, not malloc: it is not part of the allocator's work.
  size_t table_bytes = ws * sizeof(void*);
  void* mem =
      mmap(nullptr, table_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  void** slots = static_cast<void**>(mem);  // zero-filled by the kernel
  const uint32_t nslots = static_cast<uint32_t>(ws);
  const uint32_t range = static_cast<uint32_t>(max - min + 1);
  bench::Rng rng(seed);

  long rss_start = bench::rss_kb();
  double t0 = bench::now_seconds();
  bool ok = dry ? run_ops<true>(slots, nslots, ops, min, range, rng)
                : run_ops<false>(slots, nslots, ops, min, range, rng);
  if (!ok) return 1;
  double seconds = bench::now_seconds() - t0;

  long rss_peak = bench::rss_kb();
  for (uint32_t s = 0; s < nslots; ++s) {
    if (!dry) free(slots[s]);
    slots[s] = nullptr;
  }
  long rss_after = bench::rss_kb();
  long peak = bench::peak_rss_kb(rss_peak);
  munmap(mem, table_bytes);

  printf(
      "RESULT name=%s ws=%llu ops=%llu min=%llu max=%llu seconds=%.6f mops=%.3f peak_rss_kb=%ld "
      "rss_start_kb=%ld rss_peak_kb=%ld rss_after_kb=%ld%s\n",
      name, (unsigned long long)ws, (unsigned long long)ops, (unsigned long long)min,
      (unsigned long long)max, seconds, static_cast<double>(ops) / seconds / 1e6, peak, rss_start,
      rss_peak, rss_after, dry ? " dry=1" : "");
  return 0;
}
