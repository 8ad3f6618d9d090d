// ASan awareness: memory served by hak_malloc is poisoned while free or never carved, so
// ASan reports use-after-free and overflow into a neighbouring free block. Runs in the
// asan-ubsan build; skipped elsewhere.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include "large/large.h"
#include "support.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(TEST_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace {

// Through a volatile pointer, so the compiler keeps the access.
[[maybe_unused]] void write_byte(void* p, size_t off) {
  static_cast<volatile char*>(p)[off] = 1;
}

}  // namespace

TEST(AsanAware, UseAfterFreeIsReported) {
#ifndef TEST_ASAN
  GTEST_SKIP() << "not an ASan build";
#else
  GTEST_FLAG_SET(death_test_style, "fast");
  for (size_t size : {16u, 1024u, 5000u, 1u << 20}) {
    void* keep = hak_malloc(size);  // keeps the region mapped
    void* p = hak_malloc(size);
    hak_free(p);
    EXPECT_DEATH(write_byte(p, 0), "AddressSanitizer: use-after-poison") << size;
    hak_free(keep);
  }
#endif
}

TEST(AsanAware, OverflowIntoANeighbouringBlockIsReported) {
#ifndef TEST_ASAN
  GTEST_SKIP() << "not an ASan build";
#else
  GTEST_FLAG_SET(death_test_style, "fast");
  for (size_t size : {64u, 1024u, 3000u}) {
    char* p = static_cast<char*>(hak_malloc(size));
    write_byte(p, size - 1);  // the block itself is fine
    size_t block = hak_malloc_usable_size(p);
    // The next block on the grid is free or not carved yet: poisoned.
    EXPECT_DEATH(write_byte(p, block), "AddressSanitizer: use-after-poison") << size;
    hak_free(p);
  }
#endif
}

TEST(AsanAware, LiveBlocksAreFullyUsable) {
  // Every byte of a live block, in every class and path, is writable without a report.
  std::vector<void*> v;
  for (size_t s = 1; s <= 300000; s = s * 3 / 2 + 1) {
    char* p = static_cast<char*>(hak_malloc(s));
    memset(p, 0x5a, hak_malloc_usable_size(p));
    v.push_back(p);
  }
  for (void* p : v) hak_free(p);
  void* q = hak_calloc(100, 10);
  memset(q, 1, 1000);
  q = hak_realloc(q, 5000);
  memset(q, 2, 5000);
  hak_free(q);
}

TEST(AsanAware, TheShadowOfAnUnmappedRunGoesBackToTheKernel) {
#ifndef TEST_ASAN
  GTEST_SKIP() << "not an ASan build";
#else
  // A cached run is poisoned (its shadow written: 1/8 of its size). Once unmapped, its
  // shadow pages must not stay resident: runs cached at ever new addresses grew ASan's
  // shadow without bound (fuzz_api ran out of memory after 5 minutes).
  hak::large_cache_drain();
  constexpr size_t kSize = size_t{24} << 20;
  char* p = static_cast<char*>(hak_malloc(kSize));
  ASSERT_NE(p, nullptr);
  hak_free(p);  // cached: poisoned
  size_t scale, offset;
  __asan_get_shadow_mapping(&scale, &offset);
  uintptr_t lo = ((reinterpret_cast<uintptr_t>(p) >> scale) + offset + 4095) & ~uintptr_t{4095};
  size_t pages = (kSize >> scale) / 4096 - 1;
  auto resident = [&] {
    std::vector<unsigned char> vec(pages);
    EXPECT_EQ(mincore(reinterpret_cast<void*>(lo), pages * 4096, vec.data()), 0);
    size_t n = 0;
    for (unsigned char v : vec) n += v & 1;
    return n;
  };
  EXPECT_GT(resident(), pages / 2);  // the poisoning wrote it
  hak::large_cache_drain();          // unmapped
  EXPECT_EQ(resident(), 0u);
#endif
}
