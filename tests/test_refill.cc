// The cost of a refill does not grow with the heap (issue 12): a refill that would carve
// fresh memory collects its slot's remote frees first, and that collection visits only the
// regions that got remote frees since the last one, however many regions the slot has.
#include <gtest/gtest.h>

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
