// Region lifecycle (model/SPEC.md section 4) with simulated threads: exact active counts,
// empty-release with the warm reserve, remote frees, abandonment and adoption.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <vector>

#include "support.h"

namespace {

constexpr int kC1 = 1;  // 16-byte class

// Phase 7.6 of the seed: 1M malloc(16), then free all.
void phase76(unsigned warm, size_t expect_left) {
  fresh_settings(warm);
  hk::Context* t = hk::context_create();
  std::vector<void*> v(1000000);  // before the baseline: it is still held at the end
  size_t rss0 = rss_bytes();
  {
    hk::Use use(t);
    for (auto& p : v) {
      p = hak_malloc(16);
      ASSERT_NE(p, nullptr);
      *static_cast<uint64_t*>(p) = reinterpret_cast<uintptr_t>(p);
    }
    size_t peak_regions = count_regions(hk::Kind::kSuperSlab, kC1);
    EXPECT_GE(peak_regions, 8u);  // 16 MB of 16-byte blocks
    EXPECT_EQ(active_blocks(hk::Kind::kSuperSlab, kC1), v.size());
    size_t rss_peak = rss_bytes();
    if (!kSanitized) {
      EXPECT_GT(rss_peak, rss0 + (14u << 20));
    }
    for (auto p : v) {
      ASSERT_EQ(*static_cast<uint64_t*>(p), reinterpret_cast<uintptr_t>(p));
      hak_free(p);
    }
    EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, kC1), expect_left);
    EXPECT_EQ(active_blocks(hk::Kind::kSuperSlab, kC1), 0u);
    // Pages go back: within 1 MiB of where we started (vector v itself is still held).
    if (!kSanitized) {
      EXPECT_LT(rss_bytes(), rss0 + (1u << 20)) << "rss0=" << rss0 << " peak=" << rss_peak;
    }
    printf(
        "phase 7.6 (warm=%u): rss start %zu KiB, peak %zu KiB, after free %zu KiB; C1 regions peak "
        "%zu -> %zu\n",
        warm, rss0 >> 10, rss_peak >> 10, rss_bytes() >> 10, peak_regions,
        count_regions(hk::Kind::kSuperSlab, kC1));
  }
  hk::context_exit(t);
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, kC1), expect_left);
}

}  // namespace

TEST(Lifecycle, Phase76WarmReserveOfOne) {
  phase76(1, 1);
}
TEST(Lifecycle, Phase76WarmReserveOfZeroLeavesNothing) {
  phase76(0, 0);
}

TEST(Lifecycle, PingPongKeepsOneWarmRegionAndMapsNothingNew) {
  fresh_settings(1);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    void* p = hak_malloc(32);
    hak_free(p);
    auto before = hk::os_counts();
    for (int i = 0; i < 100000; ++i) hak_free(hak_malloc(32));
    auto after = hk::os_counts();
    EXPECT_EQ(after.maps, before.maps);
    EXPECT_EQ(after.unmaps, before.unmaps);
    EXPECT_EQ(after.decommits, before.decommits);
    EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, 2), 1u);
  }
  hk::context_exit(t);
}

TEST(Lifecycle, RemoteFreesKeepTheCountExactAndReleaseAtCollection) {
  fresh_settings(0);
  hk::Context* a = hk::context_create();
  hk::Context* b = hk::context_create();
  std::vector<void*> v(5000);
  {
    hk::Use use(a);
    for (auto& p : v) p = hak_malloc(64);
  }
  auto regions = hk::regions();
  ASSERT_EQ(count_regions(hk::Kind::kSuperSlab, 3), 1u);
  {
    hk::Use use(b);
    for (size_t i = 0; i < v.size(); ++i) {
      hak_free(v[i]);
      if (i % 1000 == 0) {
        EXPECT_EQ(active_blocks(hk::Kind::kSuperSlab, 3), v.size() - i - 1);
      }
    }
  }
  EXPECT_EQ(active_blocks(hk::Kind::kSuperSlab, 3), 0u);
  // Empty by remote frees: released no later than the owner's next collection point.
  hk::context_collect(a);
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, 3), 0u);
  hk::context_exit(a);
  hk::context_exit(b);
}

TEST(Lifecycle, ExitAbandonsLiveRegionsAndTheLastFreeReleasesThem) {
  fresh_settings(0);
  hk::Context* a = hk::context_create();
  std::vector<void*> v(3000);
  {
    hk::Use use(a);
    for (auto& p : v) p = hak_malloc(128);
  }
  uint64_t a_id = hk::context_id(a);
  hk::context_exit(a);
  auto rs = hk::regions();
  size_t abandoned = 0;
  for (auto& r : rs)
    if (r.kind == hk::Kind::kSuperSlab && r.cls == 4) {
      EXPECT_NE(r.owner, a_id);
      EXPECT_EQ(r.owner, 0u);
      EXPECT_TRUE(r.abandoned);
      ++abandoned;
    }
  EXPECT_EQ(abandoned, 1u);
  // A thread whose first call is a free of another thread's block.
  hk::Context* b = hk::context_create();
  {
    hk::Use use(b);
    for (auto p : v) hak_free(p);
  }
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, 4), 0u);
  hk::context_exit(b);
}

TEST(Lifecycle, AnotherThreadAdoptsAnAbandonedRegion) {
  fresh_settings(0);
  hk::Context* a = hk::context_create();
  std::vector<void*> v(100);
  {
    hk::Use use(a);
    for (auto& p : v) p = hak_malloc(256);
  }
  hk::context_exit(a);
  hk::Context* b = hk::context_create();
  void* q;
  {
    hk::Use use(b);
    q = hak_malloc(256);
  }
  auto rs = hk::regions();
  size_t n = 0;
  for (auto& r : rs)
    if (r.kind == hk::Kind::kSuperSlab && r.cls == 5) {
      ++n;
      EXPECT_EQ(r.owner, hk::context_id(b));
      EXPECT_FALSE(r.abandoned);
      EXPECT_EQ(r.active, v.size() + 1);
    }
  EXPECT_EQ(n, 1u) << "adopted, not a new region";
  {
    hk::Use use(b);
    for (auto p : v) hak_free(p);
    hak_free(q);
  }
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, 5), 0u);
  hk::context_exit(b);
}

TEST(Lifecycle, WarmPoolIsBoundedAcrossContexts) {
  fresh_settings(1);
  std::vector<hk::Context*> cs;
  for (int i = 0; i < 4; ++i) {
    hk::Context* c = hk::context_create();
    hk::Use use(c);
    hak_free(hak_malloc(512));
    cs.push_back(c);
  }
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, 6), 4u);  // one warm per context
  for (auto c : cs) hk::context_exit(c);
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, 6), 1u);  // the pool keeps one
}

TEST(Lifecycle, ReportModeCountsBadFreesAndTheHeapStillWorks) {
  fresh_settings(1, ultra_default(), /*report=*/true);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    uint64_t e0 = hk::error_count();
    char* p = static_cast<char*>(hak_malloc(64));
    char* keep = static_cast<char*>(hak_malloc(64));
    fill(keep, 64, 9);
    hak_free(p + 8);  // interior
    hak_free(p + 1);  // misaligned
    int local = 0;
    hak_free(&local);  // foreign
    hak_free(p);
    hak_free(p);  // double
    EXPECT_EQ(hk::error_count(), e0 + 4);
    EXPECT_EQ(active_blocks(hk::Kind::kSuperSlab, 3), 1u);
    EXPECT_TRUE(check(keep, 64, 9));
    std::vector<void*> v;
    for (int i = 0; i < 1000; ++i) v.push_back(hak_malloc(64));
    for (auto q : v) hak_free(q);
    hak_free(keep);
    EXPECT_EQ(hk::error_count(), e0 + 4);
  }
  hk::context_exit(t);
  fresh_settings(1);
}

// Pages of a region that mincore says are resident.
static size_t resident_pages(uintptr_t base, size_t bytes) {
  std::vector<unsigned char> v(bytes / 4096);
  if (mincore(reinterpret_cast<void*>(base), bytes, v.data()) != 0) return SIZE_MAX;
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

// A warm region gives back the pages of every block but those of the slab being carved
// from, whole blocks included: a 256 KiB block starts in one 64 KiB slab and runs through
// three more, and only its first 64 KiB used to be given back.
TEST(Lifecycle, WarmRegionGivesBackBlocksThatCrossSlabs) {
  fresh_settings(1);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    constexpr size_t kBlock = size_t{256} << 10;
    std::vector<char*> v;
    for (int i = 0; i < 7; ++i) {  // a 2 MiB region holds 7 of them
      char* p = static_cast<char*>(hak_malloc(kBlock));
      ASSERT_NE(p, nullptr);
      memset(p, 0x5a, kBlock);
      v.push_back(p);
    }
    hk::RegionInfo r;
    ASSERT_TRUE(hk::region_of(v[0], &r));
    for (char* p : v) ASSERT_EQ(hk::region_of(p, &r) ? r.base : 0, r.base) << "one region";
    size_t full = resident_pages(r.base, r.bytes);
    for (char* p : v) hak_free(p);
    ASSERT_TRUE(hk::region_of(v[0], &r));
    EXPECT_TRUE(r.warm);
    size_t left = resident_pages(r.base, r.bytes);
    // The header page and the blocks of the slab being carved from (one block) stay.
    EXPECT_LE(left, 1 + kBlock / 4096 + 1) << "resident pages: " << full << " -> " << left;
    printf("warm 256 KiB region: resident pages %zu -> %zu\n", full, left);
    // malloc_trim gives back the rest too: the block of the slab the box carves from (the
    // region is the box's, every block in the box).
    EXPECT_EQ(hak_malloc_trim(0), 1);
    ASSERT_TRUE(hk::region_of(v[0], &r));
    size_t trimmed = resident_pages(r.base, r.bytes);
    EXPECT_LE(trimmed, 2u) << "resident pages after malloc_trim: " << left << " -> " << trimmed;
  }
  hk::context_exit(t);
}

// calloc of a block carved from uncarved memory clears only its partial first and last
// pages: the others read as zero already, and clearing them faulted them in (issue 11).
// A reused block is cleared in full.
TEST(Lifecycle, CallocLeavesFreshPagesUntouched) {
  fresh_settings(1);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    std::vector<void*> kept;
    for (size_t bytes : {size_t{200} << 10, size_t{40000}, size_t{5000}, size_t{256} << 10}) {
      char* p = static_cast<char*>(hak_calloc(1, bytes));
      ASSERT_NE(p, nullptr);
      uintptr_t a = reinterpret_cast<uintptr_t>(p);
      uintptr_t from = a & ~uintptr_t{4095}, to = (a + bytes + 4095) & ~uintptr_t{4095};
      size_t resident = resident_pages(from, to - from);
      EXPECT_LE(resident, 2u) << bytes << " bytes: " << resident << " of " << (to - from) / 4096
                              << " pages resident after calloc";
      for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(p[i], 0) << bytes << " at " << i;
      memset(p, 0x5a, bytes);
      hak_free(p);
      // The same block again (the box's top): dirty, so cleared in full.
      char* q = static_cast<char*>(hak_calloc(1, bytes));
      ASSERT_EQ(q, p);
      for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(q[i], 0) << bytes << " at " << i;
      memset(q, 0x5a, bytes);
      kept.push_back(q);  // kept: the next calloc of the class carves a fresh block
    }
    for (void* q : kept) hak_free(q);
  }
  hk::context_exit(t);
}

// After a region's blocks were written and freed, its slabs are reset: their blocks are
// uncarved again, but the pages they share with a neighbour (or the header) kept old bytes.
// calloc's fresh carve clears exactly those.
TEST(Lifecycle, CallocOfResetSlabsClearsSharedPages) {
  fresh_settings(1);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    for (size_t bytes : {size_t{5000}, size_t{10000}, size_t{14000}, size_t{81920}}) {
      std::vector<char*> v;
      for (int i = 0; i < 40; ++i) {
        char* p = static_cast<char*>(hak_malloc(bytes));
        ASSERT_NE(p, nullptr);
        memset(p, 0x5a, bytes);
        v.push_back(p);
      }
      for (char* p : v) hak_free(p);
      std::vector<char*> w;
      for (int i = 0; i < 40; ++i) {
        char* p = static_cast<char*>(hak_calloc(1, bytes));
        ASSERT_NE(p, nullptr);
        for (size_t k = 0; k < bytes; ++k) ASSERT_EQ(p[k], 0) << bytes << " #" << i << " at " << k;
        w.push_back(p);
      }
      for (char* p : w) hak_free(p);
    }
  }
  hk::context_exit(t);
}

// --- the purge delay (HAKMEM_PURGE_DELAY_MS), on the manual clock ---

namespace {
void set_purge_delay(uint32_t ms) {
  hk::Settings s = hk::settings();
  s.purge_delay_ms = ms;
  hk::set_settings(s);
}
struct ManualClock {
  ManualClock() { hk::set_manual_clock(true); }
  ~ManualClock() {
    hk::set_manual_clock(false);
    set_purge_delay(0);
  }
};
constexpr size_t kSmall = 64;
constexpr int kFill = 4000;  // 64-byte blocks over four slabs
std::vector<void*> fill_small() {
  std::vector<void*> v;
  for (int i = 0; i < kFill; ++i) {
    void* p = hak_malloc(kSmall);
    memset(p, 0x5a, kSmall);
    v.push_back(p);
  }
  return v;
}
size_t resident_of(const void* p) {
  hk::RegionInfo r;
  return hk::region_of(p, &r) ? resident_pages(r.base, r.bytes) : 0;
}
// A purge point of the calling context: a refill of another slot (more blocks than any
// box holds; they are kept, so the next call refills again).
std::vector<void*> g_kept;
void purge_point(size_t size = 3000) {
  for (int i = 0; i < 70; ++i) g_kept.push_back(hak_malloc(size));
}
void free_kept() {
  for (void* p : g_kept) hak_free(p);
  g_kept.clear();
}
}  // namespace

// An emptied region keeps its pages for the delay and gives them back at the first purge
// point after it: a fill/empty loop faults nothing in again and makes no madvise call.
TEST(Lifecycle, PurgeDelayKeepsPagesUntilDue) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(100);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    std::vector<void*> v = fill_small();
    void* first = v[0];
    size_t full = resident_of(first);
    uint64_t decommits = hk::os_counts().decommits;
    for (int round = 0; round < 20; ++round) {  // the loop of issue 13: O(1) madvise calls
      for (void* p : v) hak_free(p);
      v = fill_small();
    }
    for (void* p : v) hak_free(p);
    hk::RegionInfo r;
    ASSERT_TRUE(hk::region_of(first, &r));
    EXPECT_TRUE(r.warm);
    EXPECT_EQ(hk::os_counts().decommits, decommits) << "pages given back before the delay";
    hk::advance_clock(99);
    purge_point();
    EXPECT_EQ(resident_of(first), full) << "given back before the delay passed";
    hk::advance_clock(1);
    purge_point();
    size_t left = resident_of(first);
    EXPECT_LE(left, 1 + 16 + 1) << "the header and the slab carved from: " << full << " -> "
                                << left;
    EXPECT_EQ(hk::os_counts().decommits - decommits, 1u) << "one call for the carved span";
    free_kept();
  }
  hk::context_exit(t);
}

// hak_collect gives back at once, whatever the delay.
TEST(Lifecycle, CollectPurgesAtOnce) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(1000000);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    std::vector<void*> v = fill_small();
    void* first = v[0];
    for (void* p : v) hak_free(p);
    size_t before = resident_of(first);
    hk::context_collect(t);
    size_t after = resident_of(first);
    EXPECT_LE(after, 1 + 16 + 1) << before << " -> " << after;
    EXPECT_GT(before, after);
  }
  hk::context_exit(t);
}

// Issue 13: A fills a region (and starts a second), B frees every block of the first
// (remote), A mallocs more of that size: its refill finds the first region empty and keeps
// it warm with all its pages (it may be carved again), but carves from the second. The
// next purge point gives the pages back (here with delay 0; they stayed until exit before).
TEST(Lifecycle, RegionEmptiedByRemoteFreesIsPurged) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(0);
  hk::Context* a = hk::context_create();
  hk::Context* b = hk::context_create();
  std::vector<void*> v, rest;
  hk::RegionInfo r1;
  {
    hk::Use use(a);
    for (int i = 0; i < 33000; ++i) {  // more than one region of 64-byte blocks
      void* p = hak_malloc(kSmall);
      memset(p, 0x5a, kSmall);
      v.push_back(p);
    }
    ASSERT_TRUE(hk::region_of(v[0], &r1));
  }
  size_t full = resident_pages(r1.base, r1.bytes);
  {
    hk::Use use(b);
    for (void* p : v) {
      if (reinterpret_cast<uintptr_t>(p) - r1.base < r1.bytes)
        hak_free(p);
      else
        rest.push_back(p);
    }
  }
  ASSERT_FALSE(rest.empty()) << "all blocks in one region";
  {
    hk::Use use(a);
    for (int i = 0; i < 200; ++i) rest.push_back(hak_malloc(kSmall));  // refills collect r1
    hk::RegionInfo now;
    ASSERT_TRUE(hk::region_of(reinterpret_cast<void*>(r1.base + r1.bytes / 2), &now));
    EXPECT_TRUE(now.warm && now.active == 0) << "the first region, emptied by B";
    purge_point();
  }
  size_t left = resident_pages(r1.base, r1.bytes);
  EXPECT_LE(left, 4u) << "the emptied region kept its pages: " << full << " -> " << left;
  {
    hk::Use use(a);
    for (void* p : rest) hak_free(p);
    free_kept();
  }
  hk::context_exit(b);
  hk::context_exit(a);
}

// A region listed for purging, taken into use again, then released (the warm reserve is
// full): the purge list drops it first, so a later purge point never touches it.
TEST(Lifecycle, ReleasedRegionLeavesThePurgeList) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(50);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    // Two regions of one class: 256 KiB blocks, seven per region.
    constexpr size_t kBlock = size_t{256} << 10;
    std::vector<void*> v;
    for (int i = 0; i < 14; ++i) v.push_back(hak_malloc(kBlock));
    hk::RegionInfo ra, rb;
    ASSERT_TRUE(hk::region_of(v[0], &ra));
    ASSERT_TRUE(hk::region_of(v[13], &rb));
    ASSERT_NE(ra.base, rb.base);
    for (int i = 0; i < 7; ++i) hak_free(v[i]);  // region A empty: warm, listed
    ASSERT_TRUE(hk::region_of(v[0], &ra) && ra.warm);
    void* again = hak_malloc(kBlock);  // A in use again (still listed)
    ASSERT_TRUE(hk::region_of(again, &ra) &&
                ra.base == reinterpret_cast<uintptr_t>(v[0]) -
                               (reinterpret_cast<uintptr_t>(v[0]) & ((uintptr_t{2} << 20) - 1)));
    for (int i = 7; i < 14; ++i) hak_free(v[i]);  // B empty: the warm one now
    hak_free(again);                              // A empty, the reserve full: released
    EXPECT_EQ(count_regions(hk::Kind::kMid, static_cast<int>(ra.cls)), 1u);
    hk::advance_clock(100);
    purge_point();  // would read the released region's header if it were still listed
    free_kept();
  }
  hk::context_exit(t);
}

// Issue 13, stranded memory: A builds 64-byte nodes, B frees them all, A then allocates
// only 32-byte blocks. A's refills of that other slot collect every slot once the collection
// interval (the purge delay, at least 10 ms) has passed: the emptied regions are released
// down to the warm reserve, whose pages go after the delay.
TEST(Lifecycle, RegionsEmptiedByOtherThreadsComeBackWithoutTheirSlot) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(10);
  hk::Context* a = hk::context_create();
  hk::Context* b = hk::context_create();
  const int cls64 = 3, cls32 = 2;
  std::vector<void*> nodes, small;
  {
    hk::Use use(a);
    for (int i = 0; i < 200000; ++i) {
      void* p = hak_malloc(64);
      memset(p, 1, 64);
      nodes.push_back(p);
    }
  }
  size_t built = count_regions(hk::Kind::kSuperSlab, cls64);
  ASSERT_GE(built, 6u);
  {
    hk::Use use(b);
    for (void* p : nodes) hak_free(p);
  }
  {
    hk::Use use(a);
    for (int i = 0; i < 1000; ++i) small.push_back(hak_malloc(32));
  }
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, cls64), built) << "collected before the interval";
  hk::advance_clock(10);
  {
    hk::Use use(a);
    for (int i = 0; i < 1000; ++i) small.push_back(hak_malloc(32));
  }
  EXPECT_EQ(count_regions(hk::Kind::kSuperSlab, cls64), 1u) << "stranded regions of " << built;
  hk::RegionInfo warm{};
  for (const hk::RegionInfo& r : hk::regions())
    if (r.kind == hk::Kind::kSuperSlab && r.cls == cls64) warm = r;
  hk::advance_clock(10);
  {
    hk::Use use(a);
    for (int i = 0; i < 1000; ++i) small.push_back(hak_malloc(32));
  }
  // The header and, if it is the region the slot carves from, that slab (the purge rule).
  EXPECT_LE(resident_pages(warm.base, warm.bytes), 3u + 16u)
      << "the warm one's pages after the delay";
  EXPECT_GE(count_regions(hk::Kind::kSuperSlab, cls32), 1u);
  {
    hk::Use use(a);
    for (void* p : small) hak_free(p);
  }
  hk::context_exit(b);
  hk::context_exit(a);
}

// Residency as the user sees it, for every class: 4 MiB of blocks of one size written,
// then all freed; after the purge delay and a purge point, the process's RSS is within
// 1 MiB of where it started, and so are the pages resident in hakmem's regions.
TEST(Lifecycle, EveryClassGivesItsPagesBackAfterTheDelay) {
  std::vector<size_t> sizes = {8, 16, 32, 64, 128, 256, 512, 1024};
  for (size_t s = 1280; s <= (size_t{256} << 10);) {  // every mid class: 4 per doubling
    sizes.push_back(s);
    size_t p2 = size_t{1} << (63 - __builtin_clzll(s));
    s += p2 / 4;
  }
  std::vector<void*> v((size_t{4} << 20) / 8, nullptr);  // touched before any start
  for (size_t size : sizes) {
    size_t other = size == 3072 ? 5000 : 3000;  // the purge point's slot
    fresh_settings(1);
    ManualClock clock;
    set_purge_delay(10);
    hk::Context* t = hk::context_create();
    {
      hk::Use use(t);
      purge_point(other);  // the other slot's region exists before the start (blocks kept)
      size_t rss_start = rss_bytes();
      size_t count = (size_t{4} << 20) / size;
      for (size_t i = 0; i < count; ++i) {
        v[i] = hak_malloc(size);
        ASSERT_NE(v[i], nullptr);
        memset(v[i], 0x5a, size);
      }
      for (size_t i = 0; i < count; ++i) hak_free(v[i]);
      hk::advance_clock(10);
      purge_point(other);
      size_t resident = 0;
      for (const hk::RegionInfo& r : hk::regions())
        if (r.kind != hk::Kind::kLarge) resident += resident_pages(r.base, r.bytes) * 4096;
      size_t rss = rss_bytes();
      // Sanitizer runtimes and Valgrind keep shadow memory of what was written.
      if (!foreign_malloc()) {
        EXPECT_LE(rss, rss_start + (size_t{1} << 20))
            << size << "-byte blocks: RSS " << rss_start / 1024 << " KiB -> " << rss / 1024;
      }
      EXPECT_LE(resident, size_t{1} << 20)
          << size << "-byte blocks: " << resident / 1024 << " KiB resident in hakmem's regions";
      free_kept();
    }
    hk::context_exit(t);
  }
}

// A region pooled at a thread's exit keeps its pages for the purge delay (the next thread
// adopts it without faulting them in again), then gives them back at a purge point of any
// thread; malloc_trim gives them back at once.
TEST(Lifecycle, PooledRegionKeepsItsPagesForTheDelay) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(10);
  for (bool by_trim : {false, true}) {
    hk::Context* t = hk::context_create();
    hk::RegionInfo r{};
    {
      hk::Use use(t);
      std::vector<void*> v = fill_small();
      ASSERT_TRUE(hk::region_of(v[0], &r));
      for (void* p : v) hak_free(p);
    }
    hk::context_exit(t);  // empty: pooled
    ASSERT_TRUE(hk::region_of(reinterpret_cast<void*>(r.base), &r));
    EXPECT_TRUE(r.warm && r.owner == 0) << "pooled";
    size_t kept = resident_pages(r.base, r.bytes);
    EXPECT_GE(kept, 60u) << "pages kept for the delay";
    hk::Context* u = hk::context_create();
    {
      hk::Use use(u);
      if (by_trim) {
        EXPECT_EQ(hak_malloc_trim(0), 1);
      } else {
        hk::advance_clock(10);
        purge_point();  // another thread's refill
      }
      size_t left = resident_pages(r.base, r.bytes);
      EXPECT_LE(left, 4u) << (by_trim ? "malloc_trim" : "after the delay") << ": " << kept << " -> "
                          << left;
      free_kept();
    }
    hk::context_exit(u);
    fresh_settings(1);
    set_purge_delay(10);
  }
}

// Mid regions hold few blocks (seven to thirty) and empty often: beyond the warm reserve a
// released one waits in the large-run cache and the next region is that one, its pages still
// resident, rather than a fresh mapping that faults every page in again (bench large-churn,
// docs/DESIGN.md section 6). A fill / free-all loop of eight regions' worth maps nothing after
// the first round and faults almost nothing in; the released regions are out of the map, and
// their pages go back after the delay, or at malloc_trim.
TEST(Lifecycle, ReleasedMidRegionsAreReusedFromTheCache) {
  for (bool by_trim : {false, true}) {
    fresh_settings(1);
    ManualClock clock;
    set_purge_delay(10);
    constexpr size_t kBlock = size_t{128} << 10;
    constexpr int kBlocks = 8 * 15;  // a 2 MiB region holds 15 of them
    hk::Context* t = hk::context_create();
    {
      hk::Use use(t);
      std::vector<char*> v(kBlocks);
      auto fill_all = [&] {
        for (char*& p : v) {
          p = static_cast<char*>(hak_malloc(kBlock));
          ASSERT_NE(p, nullptr);
          memset(p, 0x5a, kBlock);
        }
      };
      auto free_all = [&] {
        for (char* p : v) hak_free(p);
      };
      fill_all();
      free_all();
      uint64_t maps = hk::os_counts().maps;
      struct rusage ru0, ru1;
      getrusage(RUSAGE_THREAD, &ru0);
      for (int round = 0; round < 6; ++round) {
        fill_all();
        free_all();
      }
      getrusage(RUSAGE_THREAD, &ru1);
      long faults = ru1.ru_minflt - ru0.ru_minflt;
      EXPECT_EQ(hk::os_counts().maps, maps) << "regions mapped again";
      // One round writes kBlocks * 32 pages; without the cache each round faulted in 7/8 of them.
      if (!kSanitized) {
        EXPECT_LT(faults, 1000) << "page faults in 6 rounds";
      }
      // The released regions left the map; their pages are kept for the delay.
      std::vector<uintptr_t> released;
      hk::RegionInfo r;
      for (char* p : v) {
        uintptr_t base = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t{2 << 20} - 1);
        if (!hk::region_of(p, &r) && (released.empty() || released.back() != base))
          released.push_back(base);
      }
      ASSERT_GE(released.size(), 5u);
      size_t kept = 0;
      for (uintptr_t b : released) kept += resident_pages(b, 2 << 20);
      if (!kSanitized) {
        EXPECT_GE(kept, released.size() * 256) << "pages kept for the delay";
      }
      uint64_t decommits = hk::os_counts().decommits;
      if (by_trim) {
        EXPECT_EQ(hak_malloc_trim(0), 1);
      } else {
        hk::advance_clock(10);
        purge_point();  // a refill's periodic purge
      }
      size_t left = 0;  // purge_point's class may have taken one of them again
      for (uintptr_t b : released)
        if (!hk::region_of(reinterpret_cast<void*>(b), &r)) left += resident_pages(b, 2 << 20);
      EXPECT_EQ(left, 0u) << (by_trim ? "malloc_trim" : "after the delay") << ": " << kept << " -> "
                          << left << " resident pages";
      EXPECT_GE(hk::os_counts().decommits - decommits, released.size() - 1);
      printf(
          "mid fill/free loop (%s): 6 rounds %ld faults, %zu released regions, %zu -> %zu pages\n",
          by_trim ? "trim" : "delay", faults, released.size(), kept, left);
      free_kept();
    }
    hk::context_exit(t);
  }
  fresh_settings(1);
}

// A region taken from the large-run cache clears the pages the cached block wrote, and only
// those: a large block whose pages were not all written (here its first only) leaves the
// others unfaulted, and the region that takes its run does not fault them in to clear them
// (region.cc clear_dirty: 512 resident pages without it, a few with it).
// A context mallocs a 3 MiB block, lets `write` write it, frees it (the run goes to the
// large-run cache with its pages, for the purge delay) and exits. Returns the run's base.
template <class Write>
static uintptr_t cache_large_block(Write write) {
  constexpr size_t kLargeBlock = size_t{3} << 20;
  hk::Context* a = hk::context_create();
  uintptr_t run = 0;
  {
    hk::Use use(a);
    char* p = static_cast<char*>(hak_malloc(kLargeBlock));
    if (!p) {
      ADD_FAILURE() << "malloc of the large block failed";
    } else {
      write(p, kLargeBlock);
      run = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t{2 << 20} - 1);
      hak_free(p);
    }
  }
  hk::context_exit(a);
  return run;
}

TEST(Lifecycle, ARegionFromTheCacheFaultsInNoPageTheCachedBlockNeverWrote) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(10);
  uintptr_t run = cache_large_block([](char* p, size_t) { p[0] = 1; });  // 1 page of 768
  ASSERT_NE(run, 0u);
  hk::Context* b = hk::context_create();
  {
    hk::Use use(b);
    void* q = hak_malloc(64);
    ASSERT_NE(q, nullptr);
    hk::RegionInfo r;
    ASSERT_TRUE(hk::region_of(q, &r));
    ASSERT_EQ(r.base, run) << "the region is the cached run's first";
    size_t resident = resident_pages(r.base, r.bytes);
    EXPECT_LE(resident, 8u) << "resident pages of the region taken from the cache";
    printf("region from a sparsely written cached run: %zu resident pages\n", resident);
    hak_free(q);
  }
  hk::context_exit(b);
}

// The other half of that clear: written pages (resident) are cleared, unwritten ones given
// back, and both read as zero to the region that takes the run: calloc of mid blocks carved
// from it (which clears only their partial pages: uncarved memory must read zero) sees no
// byte of the old block, written on every other page.
TEST(Lifecycle, ARegionFromTheCacheReadsZeroWhereTheCachedBlockWrote) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(10);
  ASSERT_NE(cache_large_block([](char* p, size_t bytes) {
              for (size_t off = 0; off < bytes; off += 2 * 4096) memset(p + off, 0x5a, 4096);
            }),
            0u);
  hk::Context* b = hk::context_create();
  {
    hk::Use use(b);
    constexpr size_t kMid = 60 << 10;  // fresh carves of a mid class, one block at a time
    std::vector<unsigned char*> blocks;
    for (int i = 0; i < 30; ++i) {
      auto* q = static_cast<unsigned char*>(hak_calloc(1, kMid));
      ASSERT_NE(q, nullptr);
      for (size_t k = 0; k < kMid; ++k) ASSERT_EQ(q[k], 0) << "block " << i << " byte " << k;
      blocks.push_back(q);
    }
    for (unsigned char* q : blocks) hak_free(q);
  }
  hk::context_exit(b);
}

// A region taken from the cache is cleared where its last use wrote (resident, though not
// carved): those pages count as touched and go back as carved ones do. A thread that maps
// such a region for a few small blocks, frees them and exits kept about 2 MiB resident per
// region (bench thread-churn: 7-13 MB 100 ms after the loop instead of 3.5).
TEST(Lifecycle, ClearedPagesOfARegionFromTheCacheGoBack) {
  fresh_settings(1);
  ManualClock clock;
  set_purge_delay(10);
  constexpr size_t kBlock = size_t{128} << 10;
  hk::Context* a = hk::context_create();
  std::vector<uintptr_t> cached;
  {
    hk::Use use(a);
    std::vector<char*> v(3 * 15);  // three regions of 128 KiB blocks, written
    for (char*& p : v) {
      p = static_cast<char*>(hak_malloc(kBlock));
      ASSERT_NE(p, nullptr);
      memset(p, 0x5a, kBlock);
    }
    for (char* p : v) {
      uintptr_t base = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t{2 << 20} - 1);
      if (cached.empty() || cached.back() != base) cached.push_back(base);
      hak_free(p);
    }
  }
  hk::context_exit(a);  // beyond the warm reserve: released, its pages kept in the cache
  size_t before = 0;
  for (uintptr_t b : cached) before += resident_pages(b, 2 << 20);
  if (!kSanitized) {
    ASSERT_GE(before, 2 * 400u) << "the released regions' pages are kept for the delay";
  }
  hk::Context* b = hk::context_create();
  {
    hk::Use use(b);
    void* p = hak_malloc(64);  // its region is one of the cached ones, cleared
    ASSERT_NE(p, nullptr);
    hk::RegionInfo r;
    ASSERT_TRUE(hk::region_of(p, &r));
    bool from_cache = false;
    for (uintptr_t c : cached) from_cache |= c == r.base;
    ASSERT_TRUE(from_cache) << "a fresh mapping, not a cached region";
    EXPECT_GT(r.carved_slabs, 1u) << "its cleared slabs count as carved";
    hak_free(p);
    hak_collect();  // the warm region keeps at most the slab it carves from
    size_t left = resident_pages(r.base, r.bytes);
    if (!kSanitized) {
      EXPECT_LE(left, 16u + 4u) << "resident pages of the warm region after collect";
    }
    printf("region from the cache: %zu resident pages after collect\n", left);
  }
  hk::context_exit(b);
  fresh_settings(1);
}
