// The cost of a refill does not grow with the heap (issue 12): a refill that would carve
// fresh memory collects its slot's remote frees first, and that collection visits only the
// regions that got remote frees since the last one, however many regions the slot has.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <vector>

#include "support.h"

namespace {

// A mid class with one block per 64 KiB slab: every malloc carves a fresh slab, so every
// malloc is a refill, and 256 regions take a few thousand mallocs only.
constexpr size_t kBlock = 64u << 10;
constexpr size_t kRegions = 256;
// Visits a refill may make with no remote free to collect (the region it refills from).
constexpr uint64_t kSmall = 2;

struct Refills {
  uint64_t collections, visits;
};
Refills refills() {
  return {hk::refill_collections(), hk::refill_region_visits()};
}

int class_of(const void* p) {
  hk::RegionInfo r;
  EXPECT_TRUE(hk::region_of(p, &r));
  return r.cls;
}

// The most regions one refill collection visited while `n` more blocks were allocated, or
// (n == 0) until the slot of kBlock has `regions` regions.
uint64_t max_visits_per_refill(std::vector<void*>& blocks, size_t n, size_t regions = 0) {
  uint64_t most = 0;
  int cls = blocks.empty() ? -1 : class_of(blocks[0]);
  for (size_t i = 0; n ? i < n : count_regions(hk::Kind::kMid, cls) < regions; ++i) {
    Refills before = refills();
    void* p = hak_malloc(kBlock);
    EXPECT_NE(p, nullptr);
    blocks.push_back(p);
    Refills after = refills();
    if (after.collections > before.collections)
      most =
          std::max(most, (after.visits - before.visits) / (after.collections - before.collections));
  }
  return most;
}

// Grows the slot of kBlock in the current context to `regions` regions.
void grow_to(std::vector<void*>& blocks, size_t regions) {
  blocks.push_back(hak_malloc(kBlock));
  int cls = class_of(blocks[0]);
  while (count_regions(hk::Kind::kMid, cls) < regions) blocks.push_back(hak_malloc(kBlock));
}

}  // namespace

TEST(Refill, CollectionVisitsNoRegionWithoutRemoteFrees) {
  fresh_settings(1);
  hk::Context* a = hk::context_create();
  std::vector<void*> blocks;
  {
    hk::Use use(a);
    grow_to(blocks, kRegions / 2);
    int cls = class_of(blocks[0]);
    // From half the heap to all of it: a refill costs the same at 128 regions as at 256.
    uint64_t most = max_visits_per_refill(blocks, 0, kRegions);
    EXPECT_LE(most, kSmall) << "regions: " << count_regions(hk::Kind::kMid, cls);
    for (void* p : blocks) hak_free(p);
  }
  hk::context_exit(a);
}

TEST(Refill, CollectionVisitsOnlyRegionsWithRemoteFrees) {
  fresh_settings(1);
  hk::Context* a = hk::context_create();
  hk::Context* b = hk::context_create();
  std::vector<void*> blocks;
  {
    hk::Use use(a);
    grow_to(blocks, kRegions);
  }
  int cls = class_of(blocks[0]);
  // b frees one block in each of 16 regions (every 16th region): remote frees.
  constexpr size_t kFreed = 16;
  size_t per_region = blocks.size() / kRegions;
  std::vector<size_t> freed;
  {
    hk::Use use(b);
    for (size_t i = 0; i < kFreed; ++i) {
      size_t k = i * (kRegions / kFreed) * per_region;
      hak_free(blocks[k]);
      freed.push_back(k);
    }
  }
  uint64_t pending = 0;
  for (const auto& r : hk::regions())
    if (r.kind == hk::Kind::kMid && r.cls == cls) pending += r.pending;
  EXPECT_EQ(pending, kFreed);
  {
    hk::Use use(a);
    // The next refill collects them all (SPEC section 3: every pending count drops to 0),
    // visiting those 16 regions and not the others; then none again.
    Refills before = refills();
    blocks.push_back(hak_malloc(kBlock));
    Refills after = refills();
    EXPECT_EQ(after.collections, before.collections + 1);
    EXPECT_GE(after.visits - before.visits, kFreed);
    EXPECT_LE(after.visits - before.visits, kFreed + kSmall);
    for (const auto& r : hk::regions()) {
      if (r.kind == hk::Kind::kMid && r.cls == cls) {
        EXPECT_EQ(r.pending, 0u);
      }
    }
    EXPECT_LE(max_visits_per_refill(blocks, 4 * per_region), kSmall);
    for (size_t k : freed) blocks[k] = nullptr;
    for (void* p : blocks)
      if (p) hak_free(p);
  }
  hk::context_exit(a);
  hk::context_exit(b);
}

// The owner's free into a region that is not its box's goes on that region's spill
// (front/hot.h): still checked (a double free of it is reported), the region back on the
// partial list, and a refill takes the spill: the freed blocks come back before any region
// is mapped. Thread exit gives the spills back to their slabs.
TEST(Refill, FreesIntoAnotherOwnedRegionGoOnItsSpillAndComeBack) {
  fresh_settings(1, ultra_default(), /*report=*/true);
  hk::Context* a = hk::context_create();
  std::vector<void*> blocks;
  {
    hk::Use use(a);
    grow_to(blocks, 4);  // the box is in the fourth region; the first three are full
    int cls = class_of(blocks[0]);
    size_t regions = count_regions(hk::Kind::kMid, cls);
    EXPECT_EQ(regions, 4u);
    // Two blocks of the first region: its spill.
    void* x = blocks[0];
    void* y = blocks[1];
    hak_free(x);
    hak_free(y);
    uint64_t errors = hk::error_count();
    hak_free(y);  // a double free of a spilled block
    EXPECT_EQ(hk::error_count(), errors + 1);
    EXPECT_EQ(active_blocks(hk::Kind::kMid, cls), blocks.size() - 2);
    blocks[0] = blocks[1] = nullptr;
    // The refill takes the spill, last freed first, before the fourth region carves more
    // (a mid slot: Refill.MidRefillTakesFreedBlocksBeforeCarving) and before a fifth region.
    bool got_x = false, got_y = false;
    for (size_t i = 0; i < 2 * blocks.size() && !(got_x && got_y); ++i) {
      void* p = hak_malloc(kBlock);
      ASSERT_NE(p, nullptr);
      if (p == y) got_y = true;
      if (p == x) {
        EXPECT_TRUE(got_y) << "the spill is LIFO";
        got_x = true;
      }
      blocks.push_back(p);
      ASSERT_EQ(count_regions(hk::Kind::kMid, cls), regions) << "mapped with a spill to take";
    }
    EXPECT_TRUE(got_x && got_y);
    // Spills at exit: a block of each of the first two regions, then the exit.
    for (size_t k : {size_t{2}, blocks.size() / 4}) {
      hak_free(blocks[k]);
      blocks[k] = nullptr;
    }
  }
  hk::context_exit(a);
  hk::Context* b = hk::context_create();
  {
    hk::Use use(b);
    for (void* p : blocks)  // into abandoned regions: their lists were consistent
      if (p) hak_free(p);
    EXPECT_EQ(active_blocks(hk::Kind::kMid), 0u);
  }
  hk::context_exit(b);
}

// A mid block carved from the box's region faults in every page; one freed in another owned
// region has them resident. A refill that would carve takes the freed ones first (here the
// first region's spill): the block comes back resident (mincore, not a fault count: the
// sanitizers' shadow pages fault too), and nothing is carved while a freed block waits.
TEST(Refill, MidRefillTakesFreedBlocksBeforeCarving) {
  fresh_settings(1);
  hk::Context* a = hk::context_create();
  std::vector<void*> blocks;
  {
    hk::Use use(a);
    grow_to(blocks, 2);  // the box is in the second region, most of it uncarved
    int cls = class_of(blocks[0]);
    for (void* p : blocks) memset(p, 0x5a, kBlock);
    void* x = blocks[1];  // of the first region (full): its free goes on that one's spill
    hak_free(x);
    void* p = hak_malloc(kBlock);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p, x) << "carved a fresh block while a freed one waited";
    if (!RUNNING_ON_VALGRIND) {
      std::vector<unsigned char> v(kBlock / 4096);
      ASSERT_EQ(mincore(p, kBlock, v.data()), 0);
      size_t resident = 0;
      for (unsigned char c : v) resident += c & 1;
      EXPECT_EQ(resident, v.size()) << "a block with pages to fault in";
    }
    blocks[1] = p;
    EXPECT_EQ(count_regions(hk::Kind::kMid, cls), 2u);
    for (void* b : blocks) hak_free(b);
  }
  hk::context_exit(a);
}
