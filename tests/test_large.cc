// Large blocks: the cache of freed runs, the purge delay of their pages, the keep-committed
// budget, calloc of reused runs, and the system calls a reuse costs.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <vector>

#include "common/base.h"
#include "large/large.h"
#include "support.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;
using hak::kRegionSize;

// Resident pages of [base, base + bytes) that mincore reports.
size_t resident_pages(uintptr_t base, size_t bytes) {
  std::vector<unsigned char> v(bytes / 4096);
  if (mincore(reinterpret_cast<void*>(base), bytes, v.data()) != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

// The run of a large block malloc'd without alignment: its header page, then the block.
uintptr_t run_of(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - 4096;
}

// A known state for each test: an empty cache, the given delay and keep-committed budget
// (restored after), a manual clock.
class Large : public ::testing::Test {
 protected:
  void SetUp() override {
    hk::trim();
    saved_keep_ = hak::large_set_keep_committed(0);
    hak::large_set_keep_committed(saved_keep_);
    hk::set_manual_clock(true);
  }
  void TearDown() override {
    hk::trim();
    hak::large_set_keep_committed(saved_keep_);
    set_delay(0);
    hk::set_manual_clock(false);
  }
  static void set_delay(uint32_t ms) {
    hk::Settings s = hk::settings();
    s.purge_delay_ms = ms;
    hk::set_settings(s);
  }
  // A large block of `size` bytes, every page written.
  static char* written(size_t size) {
    char* p = static_cast<char*>(hak_malloc(size));
    if (p) memset(p, 0x5a, size);
    return p;
  }
  size_t saved_keep_ = 0;
};

// Beyond the budget (0 here) a freed run keeps its pages for the delay, and gives them back
// once it has passed, at the next large free (or malloc: one that might reuse the pages
// instead is not used here to trigger the check).
TEST_F(Large, CachedRunKeepsItsPagesUntilThePurgeDelayHasPassed) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  hak::large_set_keep_committed(0);
  set_delay(100);
  char* p = written(kMiB);
  char* a = written(5 * kMiB);  // other runs, freed to trigger the check
  char* b = written(5 * kMiB);
  ASSERT_TRUE(p && a && b);
  uintptr_t run = run_of(p);
  hak_free(p);
  EXPECT_GE(resident_pages(run, kRegionSize), 257u) << "given back before the delay";
  hk::advance_clock(99);
  hak_free(a);  // not yet
  EXPECT_GE(resident_pages(run, kRegionSize), 257u) << "given back before the delay";
  hk::advance_clock(1);
  hak_free(b);  // 100 ms have passed
  EXPECT_EQ(resident_pages(run, kRegionSize), 0u) << "not given back after the delay";
  EXPECT_GE(resident_pages(run_of(b), 3 * kRegionSize), 5 * 256u) << "b is 0 ms old";
}

// A program that stops making large calls once it freed its large blocks still gets their
// pages back after the delay: a small class's box refill is a purge point of the cache too.
TEST_F(Large, SmallRefillsGiveAFreedRunsPagesBackAfterTheDelay) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  hak::large_set_keep_committed(0);
  set_delay(10);
  std::vector<void*> v;
  auto small_calls = [&v] {  // many box refills (a refill carves 64 blocks)
    for (int i = 0; i < 5000; ++i) v.push_back(hak_malloc(48));
  };
  // The small class's region first: a region mapped later may be the freed run's.
  small_calls();
  char* p = written(4 * kMiB);
  ASSERT_TRUE(p);
  uintptr_t run = run_of(p);
  hak_free(p);
  ASSERT_GE(resident_pages(run, 2 * kRegionSize), 1000u);
  small_calls();
  EXPECT_GE(resident_pages(run, 2 * kRegionSize), 1000u) << "given back before the delay";
  hk::advance_clock(10);
  small_calls();
  EXPECT_EQ(resident_pages(run, 2 * kRegionSize), 0u) << "kept with only small calls after it";
  for (void* q : v) hak_free(q);
}

TEST_F(Large, DelayZeroGivesPagesBackAtFree) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  hak::large_set_keep_committed(0);
  set_delay(0);
  char* p = written(3 * kMiB);
  ASSERT_NE(p, nullptr);
  uintptr_t run = run_of(p);
  EXPECT_GE(resident_pages(run, 2 * kRegionSize), 3 * 256u);
  hak_free(p);
  EXPECT_EQ(resident_pages(run, 2 * kRegionSize), 0u);
}

// The budget keeps recently freed pages whatever the delay (8 MiB at least, with no live
// large block) for up to a second; malloc_trim and hak_collect give them back at once.
TEST_F(Large, BudgetKeepsPagesUntilMallocTrimOrCollect) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  set_delay(0);
  for (int collect = 0; collect < 2; ++collect) {
    char* p = written(3 * kMiB);
    char* other = written(kMiB);
    ASSERT_TRUE(p && other);
    uintptr_t run = run_of(p);
    hak_free(p);
    hk::advance_clock(900);
    hak_free(other);  // a large free checks: the budget holds both
    EXPECT_GE(resident_pages(run, 2 * kRegionSize), 3 * 256u) << "the budget holds 3 MiB";
    if (collect) {
      hak_collect();
    } else {
      EXPECT_EQ(hak_malloc_trim(0), 1);
    }
    EXPECT_EQ(resident_pages(run, 2 * kRegionSize), 0u)
        << (collect ? "hak_collect" : "malloc_trim");
    EXPECT_EQ(resident_pages(run_of(other), kRegionSize), 0u);
  }
}

// The budget holds pages for a second after their free at most: then a large call, or a
// small class's refill, gives them back (the budget used to keep them until malloc_trim:
// a program that freed its last large blocks kept 8 MiB, or four times its peak of live
// large blocks up to 256 MiB).
TEST_F(Large, BudgetKeepsPagesForASecondAtMost) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  for (uint32_t delay : {0u, 10u}) {
    set_delay(delay);
    for (bool small_only : {false, true}) {
      std::vector<void*> v;
      auto small_calls = [&v] {  // box refills: purge points
        for (int i = 0; i < 5000; ++i) v.push_back(hak_malloc(48));
      };
      small_calls();  // the small class's region first (it may take a cached run)
      // Large frees later (a large malloc could take p's run again).
      char* later[2] = {written(kMiB), written(kMiB)};
      char* p = written(3 * kMiB);
      ASSERT_TRUE(p && later[0] && later[1]);
      uintptr_t run = run_of(p);
      hak_free(p);
      hk::advance_clock(999);
      if (small_only) {
        small_calls();
      } else {
        hak_free(later[0]);
      }
      EXPECT_GE(resident_pages(run, 2 * kRegionSize), 3 * 256u) << "the budget holds 3 MiB";
      hk::advance_clock(1);
      if (small_only) {
        small_calls();
      } else {
        hak_free(later[1]);
      }
      EXPECT_EQ(resident_pages(run, 2 * kRegionSize), 0u)
          << "kept past the hold, delay " << delay << (small_only ? ", small calls" : "");
      for (void* q : v) hak_free(q);
      if (small_only) {
        hak_free(later[0]);
        hak_free(later[1]);
      }
      hak_collect();
    }
  }
}

// A class region may be taken from a cached large run whose block wrote every usable byte,
// past the pages it asked for: what calloc hands out there reads zero in every byte (the
// take clears the pages the block asked for and gives back what it wrote past them).
TEST_F(Large, ClassRegionsTakenFromAFreedLargeRunReadZero) {
  set_delay(10);
  hk::Settings saved = hk::settings(), s = saved;
  s.warm_regions = 0;  // a context's regions do not wait in the pool for the next round
  hk::set_settings(s);
  for (size_t big_size : {6 * kMiB, 3 * kMiB + 12345}) {
    char* big = static_cast<char*>(hak_malloc(big_size));
    ASSERT_NE(big, nullptr);
    size_t usable = hak_malloc_usable_size(big);
    ASSERT_GT(usable, big_size + 4096) << "the block's last region has bytes it did not ask for";
    memset(big, 0xa5, usable);
    uintptr_t run = run_of(big), run_end = run + 4096 + usable;
    hak_free(big);
    hk::Context* c = hk::context_create();  // its classes have no region yet
    {
      hk::Use use(c);
      static const char zero[256 << 10] = {};
      std::vector<void*> kept;
      size_t from_run = 0;
      // Mid blocks first (their first region is the run's): calloc of a fresh one clears
      // only its partial first and last pages, the rest must read zero already.
      for (size_t n :
           {size_t{200000}, size_t{65536}, size_t{16}, size_t{48}, size_t{1024}, size_t{4096}}) {
        for (size_t bytes = 0; bytes < kRegionSize / 2; bytes += n) {
          char* p = static_cast<char*>(hak_calloc(1, n));
          ASSERT_NE(p, nullptr);
          ASSERT_EQ(memcmp(p, zero, n), 0) << "calloc(1, " << n << ") at " << static_cast<void*>(p);
          uintptr_t a = reinterpret_cast<uintptr_t>(p);
          from_run += a >= run && a < run_end;
          memset(p, 0x3c, n);  // the next test round's old contents
          kept.push_back(p);
        }
      }
      EXPECT_GE(from_run, 5u) << "the mid blocks are not in the freed run";
      for (void* p : kept) hak_free(p);
    }
    hk::context_exit(c);
    hk::trim();
  }
  hk::set_settings(saved);
}

// Beyond the budget the oldest cached pages go first: 8 MiB kept with nothing live.
TEST_F(Large, BudgetKeepsTheMostRecentlyFreedPages) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  set_delay(0);
  hak::large_set_keep_committed(8 * kMiB);
  std::vector<char*> v;
  for (int i = 0; i < 6; ++i) v.push_back(written(kMiB + 512 * 1024));  // 1.5 MiB, one region
  for (char* p : v) ASSERT_NE(p, nullptr);
  uint64_t decommits = hk::os_counts().decommits;
  for (char* p : v) hak_free(p);
  // 6 x (1.5 MiB + the header page): the 5 most recent fit in 8 MiB.
  EXPECT_EQ(hk::os_counts().decommits, decommits + 1);
  EXPECT_EQ(resident_pages(run_of(v[0]), kRegionSize), 0u);
  for (int i = 1; i < 6; ++i) EXPECT_GE(resident_pages(run_of(v[i]), kRegionSize), 384u) << i;
}

// A request takes the cached run that holds its pages with some to spare over one that
// lacks half of them: faulting pages in costs more than leaving them idle in the block for
// a while (they come back with it). 1 MiB: the 2 MiB run written whole, not the one with
// 512 KiB of pages (which the same weight for both picked, faulting 512 KiB in).
TEST_F(Large, ReusePrefersIdlePagesToFaults) {
  set_delay(0);
  hak::large_set_keep_committed(64 * kMiB);
  char* full = written(kRegionSize - 4096);  // the header page and the block: one region
  char* spacer = written(kMiB);              // stays live: the two runs are not neighbours
  char* part = written(512 * 1024);
  ASSERT_TRUE(full && spacer && part);
  uintptr_t full_run = run_of(full), part_run = run_of(part);
  hak_free(full);
  hak_free(part);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  char* p = written(kMiB);
  getrusage(RUSAGE_SELF, &after);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(run_of(p), full_run) << (run_of(p) == part_run ? "took the run lacking pages" : "");
  if (!RUNNING_ON_VALGRIND) {
    EXPECT_LT(after.ru_minflt - before.ru_minflt, 32) << "faulted in";
  }
  hak_free(p);
  hak_free(spacer);
}

// Pages moved in from cached runs leave no hole below the block's end while whole resident
// regions can fill it: a run resident over part of its last region gives its full regions
// (keeping the rest), not all of it. A 6 MiB block assembled from runs of 4 MiB (3 resident)
// and 2 + 2 MiB (resident): the 4 MiB run moved whole left its fourth MiB to fault in.
TEST_F(Large, AssembledBlockTakesWholeResidentRegionsFirst) {
  set_delay(0);
  hak::large_set_keep_committed(64 * kMiB);
  // Live blocks between the runs keep them from merging in the cache.
  char* three = written(3 * kMiB - 4096);  // a 4 MiB run, 3 MiB of it resident
  char* spacer1 = written(kMiB);
  char* two_a = written(kRegionSize - 4096);  // 2 MiB runs, resident
  char* spacer2 = written(kMiB);
  char* two_b = written(kRegionSize - 4096);
  char* spacer3 = written(kMiB);
  ASSERT_TRUE(three && spacer1 && two_a && spacer2 && two_b && spacer3);
  hak_free(three);
  hak_free(two_a);
  hak_free(two_b);
  // 6 MiB with its header page: bigger than any cached run, so a fresh run gets their pages.
  char* p = static_cast<char*>(hak_malloc(3 * kRegionSize - 4096));
  ASSERT_NE(p, nullptr);
  // Resident before the program writes a byte: each page came with a resident piece, and a
  // hole would fault in (mincore, not a fault count: the sanitizers' shadow pages fault too).
  if (!RUNNING_ON_VALGRIND) {
    size_t missing = 3 * kRegionSize / 4096 - resident_pages(run_of(p), 3 * kRegionSize);
    EXPECT_LT(missing, 64u) << "a hole in the assembled block";
  }
  hak_free(p);
  hak_free(spacer1);
  hak_free(spacer2);
  hak_free(spacer3);
}

// Beyond the budget, freed runs wait out the purge delay only while their pages add up to
// twice the budget at most: a program that frees most of its large blocks at once gets
// their pages back at those frees, however long the delay (the 128-slot cache kept 580 MB
// of bench large-churn-256 after its free-all). With no live block the budget is 8 MiB: of
// twelve freed 3 MiB runs the newest keep their pages (8 MiB of budget, 16 of hold), the
// oldest give them back at once.
TEST_F(Large, FreedRunsFarBeyondTheBudgetGoBackAtOnce) {
  if (RUNNING_ON_VALGRIND) GTEST_SKIP() << "Valgrind keeps its own pages";
  set_delay(100000);  // the manual clock stands still: no run ages past the delay
  hak::large_set_keep_committed(256 * kMiB);
  std::vector<char*> v;
  for (int i = 0; i < 12; ++i) v.push_back(written(3 * kMiB - 4096));  // 2 regions each
  for (char* p : v) ASSERT_NE(p, nullptr);
  std::vector<uintptr_t> runs;
  for (char* p : v) runs.push_back(run_of(p));
  for (char* p : v) hak_free(p);
  size_t resident = 0;
  for (uintptr_t r : runs) resident += resident_pages(r, 2 * kRegionSize);
  EXPECT_LE(resident, (24 * kMiB + 3 * kMiB) / 4096) << "kept beyond the budget and the hold";
  EXPECT_EQ(resident_pages(runs[0], 2 * kRegionSize), 0u) << "the oldest kept its pages";
  EXPECT_GE(resident_pages(runs[11], 2 * kRegionSize), 3 * 256u) << "the newest lost its pages";
}

// A full cache unmaps the run with the fewest resident pages, not the oldest: a run freed
// first with 3 MiB of pages outlives 140 later ones of 300 KiB, and a block of its size
// reuses it without a fault (the oldest, unmapped, made its 3 MiB fault in again).
TEST_F(Large, FullCacheUnmapsTheRunWithTheFewestPages) {
  set_delay(100000);  // the manual clock stands still
  hak::large_set_keep_committed(256 * kMiB);
  // A live block whose pages make the budget 4 x 64 MiB: every freed run fits it, so none
  // is purged (with no live block, those beyond 8 + 8 MiB would be: the budget and the hold).
  char* live = written(64 * kMiB);
  ASSERT_NE(live, nullptr);
  char* big = written(3 * kMiB);
  ASSERT_NE(big, nullptr);
  uintptr_t big_run = run_of(big);
  std::vector<char*> small;
  for (int i = 0; i < 140; ++i) small.push_back(written(300 << 10));
  for (char* p : small) ASSERT_NE(p, nullptr);
  hak_free(big);
  for (char* p : small) hak_free(p);  // more than the cache holds
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  char* p = written(3 * kMiB);
  getrusage(RUSAGE_SELF, &after);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(run_of(p), big_run) << "the run with the most pages was unmapped";
  if (!RUNNING_ON_VALGRIND) {
    EXPECT_LT(after.ru_minflt - before.ru_minflt, 64) << "faulted in";
  }
  hak_free(p);
  hak_free(live);
}

// calloc of a reused run that kept its pages reads zero on every page, whether the run is
// reused whole, split, or assembled from the pages of other runs.
TEST_F(Large, CallocOfAReusedCommittedRunReadsZero) {
  set_delay(0);
  for (size_t first : {3 * kMiB, 7 * kMiB, kMiB + 4096}) {
    for (size_t second : {3 * kMiB, kMiB, 6 * kMiB, 300 * size_t{1024}}) {
      hk::trim();
      std::vector<char*> v;
      for (int i = 0; i < 3; ++i) v.push_back(written(first));
      for (char* p : v) {
        ASSERT_NE(p, nullptr);
        memset(p, 0xab, hak_malloc_usable_size(p));  // past the requested size too
      }
      for (char* p : v) hak_free(p);
      auto* q = static_cast<unsigned char*>(hak_calloc(1, second));
      ASSERT_NE(q, nullptr);
      size_t nonzero = 0;
      for (size_t i = 0; i < second; ++i) nonzero += q[i] != 0;
      EXPECT_EQ(nonzero, 0u) << first << " then " << second;
      hak_free(q);
    }
  }
}

// Whatever the cache holds, a block is never smaller than asked for nor misaligned, and
// no two live blocks overlap.
TEST_F(Large, CacheNeverHandsOutASmallerOrMisalignedRun) {
  set_delay(0);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  auto rnd = [&s] {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  };
  struct Live {
    char* p;
    size_t size;
  };
  std::vector<Live> live;
  for (int op = 0; op < 400; ++op) {
    if (!live.empty() && (live.size() > 12 || rnd() % 3 == 0)) {
      size_t k = rnd() % live.size();
      Live b = live[k];
      EXPECT_EQ(b.p[0], static_cast<char>(b.size)) << "overwritten";
      EXPECT_EQ(b.p[b.size - 1], static_cast<char>(b.size >> 8)) << "overwritten";
      hak_free(b.p);
      live[k] = live.back();
      live.pop_back();
      continue;
    }
    size_t size = (256 << 10) + rnd() % (10 * kMiB);
    size_t align = 0;
    switch (rnd() % 4) {
      case 0:
        align = size_t{4096} << (rnd() % 13);  // 4 KiB .. 16 MiB
        break;
      case 1:
        align = 64;
        break;
      default:
        break;
    }
    char* p = static_cast<char*>(align ? hak_memalign(align, size) : hak_malloc(size));
    ASSERT_NE(p, nullptr) << size << " aligned to " << align;
    if (align) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << size << " " << align;
    }
    EXPECT_GE(hak_malloc_usable_size(p), size);
    for (const Live& b : live)
      EXPECT_TRUE(p + size <= b.p || b.p + b.size <= p) << "overlaps a live block";
    p[0] = static_cast<char>(size);
    p[size - 1] = static_cast<char>(size >> 8);
    live.push_back({p, size});
  }
  for (const Live& b : live) hak_free(b.p);
}

namespace {
struct Counter : hk::OsRecorder {
  uint64_t maps = 0, unmaps = 0, decommits = 0;
  void on_map(void*, size_t) override { ++maps; }
  void on_unmap(void*, size_t) override { ++unmaps; }
  void on_decommit(void*, size_t) override { ++decommits; }
};
}  // namespace

// A reuse costs O(1) system calls: none for the same size, a few for a mix of sizes (moves
// of pages between cached runs, counted as unmaps), against a map, an unmap and the faults
// of every page without the cache.
TEST_F(Large, ReuseCostsConstantSystemCalls) {
  set_delay(0);
  Counter rec;
  hk::set_os_recorder(&rec);
  for (int i = 0; i < 4; ++i) hak_free(written(5 * kMiB));  // warm
  uint64_t calls0 = rec.maps + rec.unmaps + rec.decommits;
  for (int i = 0; i < 100; ++i) hak_free(written(5 * kMiB));
  EXPECT_EQ(rec.maps + rec.unmaps + rec.decommits, calls0) << "same size: no call";

  const size_t sizes[] = {300 << 10, 5 * kMiB, kMiB, 7 * kMiB, 3 * kMiB, 2 * kMiB};
  std::vector<char*> held;
  for (size_t s : sizes) held.push_back(written(s));
  for (char* p : held) hak_free(p);
  calls0 = rec.maps + rec.unmaps + rec.decommits;
  Counter at = rec;
  constexpr int kOps = 300;
  std::vector<char*> ws(4, nullptr);
  for (int i = 0; i < kOps; ++i) {
    char*& slot = ws[i % ws.size()];
    hak_free(slot);
    slot = written(sizes[(i * 7) % 6]);
    ASSERT_NE(slot, nullptr);
  }
  uint64_t calls = rec.maps + rec.unmaps + rec.decommits - calls0;
  printf(
      "mixed sizes: %llu system calls in %d reuses (maps %llu, unmaps and moves %llu, "
      "decommits %llu)\n",
      static_cast<unsigned long long>(calls), kOps,
      static_cast<unsigned long long>(rec.maps - at.maps),
      static_cast<unsigned long long>(rec.unmaps - at.unmaps),
      static_cast<unsigned long long>(rec.decommits - at.decommits));
  // Without the cache: a map, an unmap (and every page faulted in) per reuse.
  EXPECT_LE(calls, uint64_t{2 * kOps}) << "mixed sizes: O(1) calls per reuse";
  for (char* p : ws) hak_free(p);
  hk::trim();
  hk::set_os_recorder(nullptr);
}

// A block assembled from the pages of several cached runs spans several mappings; growing
// it still moves its pages (a region at a time) instead of copying them.
TEST_F(Large, ReallocOfAnAssembledBlockStillMovesPages) {
  set_delay(0);
  for (int i = 0; i < 3; ++i) hak_free(written(kMiB + kMiB / 2));
  char* p = static_cast<char*>(hak_malloc(5 * kMiB));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < 5 * kMiB; i += 4096) p[i] = static_cast<char>(i >> 12);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  char* q = static_cast<char*>(hak_realloc(p, 20 * kMiB));
  getrusage(RUSAGE_SELF, &after);
  ASSERT_NE(q, nullptr);
  if (!RUNNING_ON_VALGRIND) {
    EXPECT_LT(after.ru_minflt - before.ru_minflt, 200) << "faults during the realloc: a copy";
  }
  bool intact = true;
  for (size_t i = 0; i < 5 * kMiB; i += 4096) intact &= q[i] == static_cast<char>(i >> 12);
  EXPECT_TRUE(intact);
  q[20 * kMiB - 1] = 1;
  hak_free(q);
}

}  // namespace
