// Unit tests of the parts: size classes, region map, os recorder, Region geometry.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <set>
#include <vector>

#include "os/os.h"
#include "region/region.h"
#include "regionmap/region_map.h"
#include "support.h"
#include "tiny/size_class.h"

using namespace hak;

TEST(SizeClass, TinyClassesAreTheSeeds) {
  const size_t expect[] = {8, 16, 32, 64, 128, 256, 512, 1024};
  for (unsigned c = 0; c < kTinyClasses; ++c) EXPECT_EQ(class_size(c), expect[c]);
}

TEST(SizeClass, EverySizeGetsTheSmallestFittingClass) {
  for (size_t s = 0; s <= kMidMax; ++s) {
    unsigned c = size_to_class(s);
    ASSERT_LT(c, kNumClasses) << s;
    ASSERT_GE(class_size(c), s) << s;
    if (c > 0) {
      ASSERT_LT(class_size(c - 1), s) << s;
    }
  }
}

TEST(SizeClass, MidWasteAtMostAQuarter) {
  for (size_t s = kTinyMax + 1; s <= kMidMax; ++s) {
    size_t cs = class_size(size_to_class(s));
    ASSERT_LE((cs - s) * 4, cs) << s;
  }
}

// A pointer the compiler cannot see through: with constants, gcc -O0 checks the
// (untaken) out-of-range map load and reports -Wstringop-overflow.
static void* opaque_pointer(uintptr_t v) {
  asm volatile("" : "+r"(v));
  return reinterpret_cast<void*>(v);
}

TEST(RegionMap, WildAndForeignPointersAreNone) {
  int on_stack = 0;
  std::vector<int> on_glibc_heap(10);
  EXPECT_EQ(region_kind_of(&on_stack), RegionKind::kNone);
  EXPECT_EQ(region_kind_of(on_glibc_heap.data()), RegionKind::kNone);
  EXPECT_EQ(region_kind_of(nullptr), RegionKind::kNone);
  EXPECT_EQ(region_kind_of(opaque_pointer(~uintptr_t{0})), RegionKind::kNone);
  EXPECT_EQ(region_kind_of(opaque_pointer(uintptr_t{1} << 47)), RegionKind::kNone);
  EXPECT_EQ(region_kind_of(opaque_pointer(uintptr_t{0xdeadbeef000})), RegionKind::kNone);
}

TEST(RegionMap, SetCoversExactlyTheRun) {
  uintptr_t base = uintptr_t{0x7e0000000000};  // not mapped: only the map entry is touched
  region_map_set(base, 3, RegionKind::kLargeHead, RegionKind::kLargeTail);
  EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(base - 1)), RegionKind::kNone);
  EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(base)), RegionKind::kLargeHead);
  EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(base + kRegionSize + 5)),
            RegionKind::kLargeTail);
  EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(base + 3 * kRegionSize - 1)),
            RegionKind::kLargeTail);
  EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(base + 3 * kRegionSize)), RegionKind::kNone);
  region_map_set(base, 3, RegionKind::kNone, RegionKind::kNone);
  EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(base)), RegionKind::kNone);
}

namespace {
struct Recorder : hk::OsRecorder {
  std::set<uintptr_t> mapped;
  int maps = 0, unmaps = 0, decommits = 0;
  void on_map(void* p, size_t) override {
    ++maps;
    mapped.insert(reinterpret_cast<uintptr_t>(p));
  }
  void on_unmap(void* p, size_t) override {
    ++unmaps;
    EXPECT_EQ(mapped.erase(reinterpret_cast<uintptr_t>(p)), 1u) << "unmap of a range never mapped";
  }
  void on_decommit(void*, size_t) override { ++decommits; }
};
}  // namespace

TEST(Os, RecorderSeesEveryMapAndUnmapAndRegionsAreAligned) {
  fresh_settings(0);
  hk::Context* t = hk::context_create();  // its own page is mapped before recording
  Recorder rec;
  hk::set_os_recorder(&rec);
  {
    hk::Use use(t);
    void* small = hak_malloc(16);
    void* mid = hak_malloc(5000);
    void* large = hak_malloc(3 << 20);
    ASSERT_TRUE(small && mid && large);
    EXPECT_EQ(rec.maps, 3);
    for (uintptr_t b : rec.mapped) EXPECT_EQ(b % kRegionSize, 0u);
    hak_free(large);
    hk::trim();  // the large cache keeps the run; trimming unmaps it
    hak_free(mid);
    hak_free(small);
  }
  hk::context_exit(t);
  // The released class regions wait in the large-run cache, out of the region map;
  // trimming unmaps them.
  for (uintptr_t b : rec.mapped)
    EXPECT_EQ(region_kind_of(reinterpret_cast<void*>(b)), RegionKind::kNone);
  EXPECT_EQ(rec.unmaps, 1);
  hk::trim();
  EXPECT_EQ(rec.unmaps, 3);
  EXPECT_TRUE(rec.mapped.empty());
  hk::set_os_recorder(nullptr);
}

// Line 1 holds what every free reads (remote frees included) and the owner never writes on
// its mallocs and frees; active_local and spill, which it writes on them, have their own
// line: a remote free's read of line 1 then finds it shared, not modified in the owner's
// cache (bench_server: 76.6 -> 82.0 Mops/s, medians of 30 interleaved runs). The remote
// line is not in the 128-byte pair of the owner's (the L2 prefetcher fetches pairs), and
// line 0, at the page offset of every region base, holds none of the fast paths' fields.
TEST(Region, HeaderHotLinesAreApartAndOffPageOffsetZero) {
  Region* r = region_create(0);
  ASSERT_NE(r, nullptr);
  auto line = [&](const void* field) {
    return (reinterpret_cast<uintptr_t>(field) - reinterpret_cast<uintptr_t>(r)) / 64;
  };
  for (const void* f :
       {static_cast<const void*>(&r->magic), static_cast<const void*>(&r->kind),
        static_cast<const void*>(&r->block_size), static_cast<const void*>(&r->inv),
        static_cast<const void*>(&r->owner), static_cast<const void*>(&r->local_head)})
    EXPECT_EQ(line(f), 1u);
  EXPECT_EQ(line(&r->active_local), 2u);
  EXPECT_EQ(line(&r->spill), 2u);
  EXPECT_EQ(line(&r->remote_head), 4u);
  EXPECT_EQ(line(&r->queue_next), 4u);
  EXPECT_NE(line(&r->active_local) / 2, line(&r->remote_head) / 2);
  region_release(r);
}

TEST(Region, GeometryEveryBlockInsideTheRegionAndAfterTheHeader) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    Region* r = region_create(c);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->base() % kRegionSize, 0u);
    EXPECT_GE(r->data_begin, sizeof(Region)) << c;
    size_t total = 0;
    for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
      const SlabMeta& m = r->slabs[i];
      total += m.end - m.first;
      if (m.first < m.end) {
        EXPECT_GE(uintptr_t{m.first} * r->block_size, uintptr_t{i} << kSlabShift) << c;
        EXPECT_LE(uintptr_t{m.end} * r->block_size, kRegionSize) << c;
      }
    }
    EXPECT_EQ(total, (r->data_end - r->data_begin) / r->block_size) << c;
    // Carve everything: distinct, aligned, on the grid.
    std::vector<void*> out(kRegionSize / 8);
    size_t n = 0;
    for (unsigned i = 0; i < kSlabsPerRegion; ++i)
      for (FreeBlock* b = region_carve_list(r, i, 1u << 30); b; b = link_next(b)) out[n++] = b;
    EXPECT_EQ(n, total);
    std::set<void*> uniq(out.begin(), out.begin() + n);
    EXPECT_EQ(uniq.size(), n);
    for (size_t i = 0; i < n; ++i) {
      uintptr_t off = reinterpret_cast<uintptr_t>(out[i]) - r->base();
      ASSERT_TRUE(region_is_block_start(r, off));
      ASSERT_FALSE(region_is_block_start(r, off + (r->block_size >= 16 ? r->block_size / 2 : 4)));
    }
    EXPECT_FALSE(r->has_free_space());
    region_release(r);
  }
}
