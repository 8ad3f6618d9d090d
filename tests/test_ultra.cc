// C7 ULTRA: segments, page meta, the TLS box, routing in both modes, remote frees,
// lifecycle, and the fail-fast of pointers ULTRA does not own.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "stats/stats.h"
#include "support.h"

namespace {

constexpr int kC7 = 7;

size_t ultra_segments() {
  return count_regions(hk::Kind::kUltra);
}
size_t v3_c7() {
  return count_regions(hk::Kind::kSuperSlab, kC7);
}

std::string expect(const char* call, const void* p, const char* reason) {
  char buf[64];
  snprintf(buf, sizeof buf, "%p", p);
  return std::string("hakmem: ") + call + "\\(" + buf + "\\): " + reason;
}

}  // namespace

TEST(Ultra, OnEveryC7AllocationComesFromUltraAndV3MapsNoC7) {
  fresh_settings(1, /*ultra=*/true);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    std::vector<void*> v;
    for (size_t s : {513u, 600u, 1000u, 1024u}) {
      for (int i = 0; i < 450; ++i) {  // 1800 blocks: one segment holds about 1900
        void* p = hak_malloc(s);
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(hk::route_of(p), hk::Route::kUltra);
        // On the 1088-byte grid (class_stride: a cache line past each block): 64-aligned.
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
        EXPECT_EQ((reinterpret_cast<uintptr_t>(p) & ((uintptr_t{2} << 20) - 1)) % 1088, 0u);
        EXPECT_EQ(hak_malloc_usable_size(p), 1024u);
        fill(p, s, static_cast<uint8_t>(i));
        v.push_back(p);
      }
    }
    EXPECT_EQ(v3_c7(), 0u);
    EXPECT_EQ(ultra_segments(), 1u);
    EXPECT_EQ(active_blocks(hk::Kind::kUltra), v.size());
    // The statistics count them as ULTRA blocks, not as blocks of class 7.
    hak::StatsSnapshot st = hak::stats_snapshot();
    EXPECT_EQ(st.active_ultra, v.size());
    EXPECT_EQ(st.active_blocks[kC7], 0u);
    // Per-page counts add up to the segment's.
    auto rs = hk::regions();
    for (auto& r : rs)
      if (r.kind == hk::Kind::kUltra) {
        uint32_t pages[hk::kPagesPerSegment];
        ASSERT_TRUE(hk::ultra_page_active(r.base, pages));
        uint64_t sum = 0;
        for (uint32_t a : pages) sum += a;
        EXPECT_EQ(sum, r.active);
        EXPECT_EQ(r.owner, hk::context_id(t));
      }
    // Smaller sizes still go to v3.
    void* small = hak_malloc(512);
    EXPECT_EQ(hk::route_of(small), hk::Route::kV3);
    hak_free(small);
    for (void* p : v) hak_free(p);
    EXPECT_EQ(active_blocks(hk::Kind::kUltra), 0u);
    EXPECT_EQ(ultra_segments(), 1u);  // the warm one
  }
  hk::context_exit(t);
}

TEST(Ultra, OffC7IsServedByV3) {
  fresh_settings(1, /*ultra=*/false);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    void* p = hak_malloc(1024);
    EXPECT_EQ(hk::route_of(p), hk::Route::kV3);
    EXPECT_EQ(v3_c7(), 1u);
    EXPECT_EQ(ultra_segments(), 0u);
    hak_free(p);
  }
  hk::context_exit(t);
  fresh_settings(1, true);
}

TEST(Ultra, RoutingOfLiveInteriorAndForeignPointersInBothModes) {
  for (bool on : {true, false}) {
    fresh_settings(1, on);
    hk::Context* t = hk::context_create();
    {
      hk::Use use(t);
      char* c7 = static_cast<char*>(hak_malloc(1024));
      char* c3 = static_cast<char*>(hak_malloc(64));
      char* mid = static_cast<char*>(hak_malloc(3000));
      char* large = static_cast<char*>(hak_malloc(1 << 20));
      int local;
      hk::Route c7_route = on ? hk::Route::kUltra : hk::Route::kV3;
      EXPECT_EQ(hk::route_of(c7), c7_route);
      EXPECT_EQ(hk::route_of(c7 + 100), c7_route);  // interior: same region, same route
      EXPECT_EQ(hk::route_of(c3), hk::Route::kV3);
      EXPECT_EQ(hk::route_of(mid), hk::Route::kMid);
      EXPECT_EQ(hk::route_of(large), hk::Route::kLarge);
      EXPECT_EQ(hk::route_of(large + 5000), hk::Route::kLarge);
      EXPECT_EQ(hk::route_of(&local), hk::Route::kInvalid);
      EXPECT_EQ(hk::route_of(nullptr), hk::Route::kNull);
      hk::RegionInfo r;
      ASSERT_TRUE(hk::region_of(c7 + 100, &r));
      EXPECT_EQ(r.kind, on ? hk::Kind::kUltra : hk::Kind::kSuperSlab);
      EXPECT_FALSE(hk::region_of(&local, &r));
      for (char* p : {c7, c3, mid, large}) hak_free(p);
    }
    hk::context_exit(t);
  }
  fresh_settings(1, true);
}

TEST(Ultra, BlocksFromBothModesStayFreeableAcrossASwitch) {
  fresh_settings(1, false);
  hk::Context* t = hk::context_create();
  {
    hk::Use use(t);
    void* v3 = hak_malloc(1024);
    fresh_settings(1, true);
    void* ultra = hak_malloc(1024);
    EXPECT_EQ(hk::route_of(v3), hk::Route::kV3);
    EXPECT_EQ(hk::route_of(ultra), hk::Route::kUltra);
    hak_free(v3);
    hak_free(ultra);
    EXPECT_EQ(active_blocks(hk::Kind::kUltra) + active_blocks(hk::Kind::kSuperSlab, kC7), 0u);
  }
  hk::context_exit(t);
}

TEST(Ultra, FillAndEmptyManySegmentsReturnsToTheWarmReserve) {
  for (unsigned warm : {0u, 1u}) {
    fresh_settings(warm, true);
    hk::Context* t = hk::context_create();
    {
      hk::Use use(t);
      std::vector<void*> v(20000);  // ~10 segments of 2 MiB
      for (auto& p : v) {
        p = hak_malloc(1024);
        *static_cast<void**>(p) = p;
      }
      EXPECT_GE(ultra_segments(), 10u);
      EXPECT_EQ(active_blocks(hk::Kind::kUltra), v.size());
      for (auto p : v) {
        ASSERT_EQ(*static_cast<void**>(p), p);
        hak_free(p);
      }
      EXPECT_EQ(ultra_segments(), warm);
    }
    hk::context_exit(t);
    EXPECT_EQ(ultra_segments(), warm);
  }
}

TEST(Ultra, RemoteFreesAreCountedExactlyAndCollected) {
  fresh_settings(0, true);
  hk::Context* a = hk::context_create();
  hk::Context* b = hk::context_create();
  std::vector<void*> v(3000);
  {
    hk::Use use(a);
    for (auto& p : v) p = hak_malloc(1024);
  }
  {
    hk::Use use(b);
    for (size_t i = 0; i < v.size(); ++i) {
      hak_free(v[i]);
      if (i % 500 == 0) {
        EXPECT_EQ(active_blocks(hk::Kind::kUltra), v.size() - i - 1);
      }
    }
  }
  EXPECT_EQ(active_blocks(hk::Kind::kUltra), 0u);
  for (auto& r : hk::regions())
    if (r.kind == hk::Kind::kUltra) {
      uint32_t pages[hk::kPagesPerSegment];
      ASSERT_TRUE(hk::ultra_page_active(r.base, pages));
      for (uint32_t x : pages) EXPECT_EQ(x, 0u);
    }
  hk::context_collect(a);
  EXPECT_EQ(ultra_segments(), 0u);
  hk::context_exit(a);
  hk::context_exit(b);
}

TEST(Ultra, AbandonAndAdopt) {
  fresh_settings(0, true);
  hk::Context* a = hk::context_create();
  std::vector<void*> v(100);
  {
    hk::Use use(a);
    for (auto& p : v) p = hak_malloc(1024);
  }
  hk::context_exit(a);
  for (auto& r : hk::regions()) {
    if (r.kind == hk::Kind::kUltra) {
      EXPECT_TRUE(r.abandoned);
    }
  }
  hk::Context* b = hk::context_create();
  {
    hk::Use use(b);
    void* q = hak_malloc(1024);  // adopts the abandoned segment
    EXPECT_EQ(ultra_segments(), 1u);
    for (auto& r : hk::regions()) {
      if (r.kind == hk::Kind::kUltra) {
        EXPECT_EQ(r.owner, hk::context_id(b));
      }
    }
    for (auto p : v) hak_free(p);
    hak_free(q);
    EXPECT_EQ(ultra_segments(), 0u);
  }
  hk::context_exit(b);
}

TEST(Ultra, CrossThreadUnderLoadThenAllFreedBackToTheWarmReserve) {
  fresh_settings(1, true);
  constexpr int kN = 200000;
  std::vector<void*> slots(kN);
  std::atomic<int> ready{0};
  std::thread producer([&] {
    for (int i = 0; i < kN; ++i) {
      void* p = hak_malloc(1024);
      memset(p, i & 0xff, 1024);
      slots[i] = p;
      ready.store(i + 1, std::memory_order_release);
      // Free some locally, interleaved with the consumer's remote frees.
      if (i % 7 == 0) {
        void* q = hak_malloc(1000);
        hak_free(q);
      }
    }
  });
  std::thread consumer([&] {
    for (int i = 0; i < kN; ++i) {
      while (ready.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      auto* p = static_cast<unsigned char*>(slots[i]);
      if (p[0] != (i & 0xff) || p[1023] != (i & 0xff)) ADD_FAILURE() << "corrupt block " << i;
      hak_free(p);
    }
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(active_blocks(hk::Kind::kUltra), 0u);
  EXPECT_LE(ultra_segments(), 1u);
}

TEST(UltraDeath, ABadPointerThatIsNotUltrasStillFailsFastOnV3) {
  GTEST_FLAG_SET(death_test_style, "fast");
  fresh_settings(1, true);
  char* small = static_cast<char*>(hak_malloc(256));
  EXPECT_DEATH(hak_free(small + 16), expect("free", small + 16, "interior pointer"));
  hak_free(small);
  EXPECT_DEATH(hak_free(small), expect("free", small, "double free"));
  int local;
  EXPECT_DEATH(hak_free(&local), expect("free", &local, "invalid pointer"));
  fresh_settings(1, false);
  char* v3c7 = static_cast<char*>(hak_malloc(1024));
  fresh_settings(1, true);  // ULTRA on now; a v3 C7 block still gets v3's checks
  EXPECT_DEATH(hak_free(v3c7 + 512), expect("free", v3c7 + 512, "interior pointer"));
  hak_free(v3c7);
}

// One fast path for every slot: ULTRA frees are validated like v3 frees in every build.
TEST(UltraDeath, UltraFreesAreValidatedLikeV3) {
  GTEST_FLAG_SET(death_test_style, "fast");
  fresh_settings(1, true);
  char* p = static_cast<char*>(hak_malloc(1024));
  char* keep = static_cast<char*>(hak_malloc(1024));
  ASSERT_EQ(hk::route_of(p), hk::Route::kUltra);
  EXPECT_DEATH(hak_free(p + 64), expect("free", p + 64, "interior pointer"));
  EXPECT_DEATH(hak_free(p + 3), expect("free", p + 3, "misaligned pointer"));
  hak_free(p);
  EXPECT_DEATH(hak_free(p), expect("free", p, "double free"));
  hak_free(keep);
}

TEST(Ultra, FreedBlocksInFullSegmentsAreReusedBeforeMappingMore) {
  // Regression: ULTRA frees into a segment on the full list must make it reusable; the
  // bench showed segments mapped, emptied and released over and over instead.
  for (bool on : {true, false}) {
    fresh_settings(1, on);
    hk::Context* t = hk::context_create();
    {
      hk::Use use(t);
      std::vector<void*> v(6000);  // three segments' worth
      for (auto& p : v) p = hak_malloc(1024);
      auto maps = hk::os_counts().maps;
      uint64_t state = 12345;
      for (int round = 0; round < 20; ++round) {
        for (auto& p : v) {
          state = state * 6364136223846793005ull + 1442695040888963407ull;
          if ((state >> 33) % 2) {
            hak_free(p);
            p = nullptr;
          }
        }
        for (auto& p : v)
          if (!p) p = hak_malloc(1024);
      }
      EXPECT_EQ(hk::os_counts().maps, maps) << (on ? "ULTRA" : "v3");
      for (auto p : v) hak_free(p);
    }
    hk::context_exit(t);
  }
  fresh_settings(1, true);
}
