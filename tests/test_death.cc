// Bad input on checked paths (docs/DESIGN.md section 7): the message names the call, the
// pointer and the reason, then hakmem aborts (the default HAKMEM_ON_ERROR=abort).
#include <gtest/gtest.h>

#include <string>

#include "support.h"

namespace {

std::string expect(const char* call, const void* p, const char* reason) {
  char buf[128];
  snprintf(buf, sizeof buf, "%p", p);
  std::string s = std::string("hakmem: ") + call + "\\(" + buf + "\\): " + reason;
  return s;
}

class Death : public ::testing::Test {
 protected:
  void SetUp() override {
    // "fast" (fork) style: the child sees the same addresses as the message to match.
    GTEST_FLAG_SET(death_test_style, "fast");
    fresh_settings(1);
  }
};

}  // namespace

TEST_F(Death, ForeignPointer) {
  int local = 0;
  EXPECT_DEATH(hak_free(&local), expect("free", &local, "invalid pointer"));
  void* glibc = malloc(32);
  EXPECT_DEATH(hak_free(glibc), expect("free", glibc, "invalid pointer"));
  free(glibc);
}

TEST_F(Death, InteriorPointer) {
  char* p = static_cast<char*>(hak_malloc(64));
  EXPECT_DEATH(hak_free(p + 16), expect("free", p + 16, "interior pointer"));
  char* m = static_cast<char*>(hak_malloc(5000));
  EXPECT_DEATH(hak_free(m + 1024), expect("free", m + 1024, "interior pointer"));
  char* l = static_cast<char*>(hak_malloc(1 << 20));
  EXPECT_DEATH(hak_free(l + 4096), expect("free", l + 4096, "interior pointer"));
  hak_free(p);
  hak_free(m);
  hak_free(l);
}

// A pointer whole regions into a large block: its region is a large tail, and its offset
// within the region is the block's own, so only the full pointer tells it apart.
TEST_F(Death, PointerIntoALargeBlocksTail) {
  constexpr size_t kRegion = size_t{2} << 20;
  char* l = static_cast<char*>(hak_malloc(5 * kRegion));
  ASSERT_NE(l, nullptr);
  for (size_t k : {size_t{1}, size_t{4}}) {
    char* q = l + k * kRegion;
    EXPECT_DEATH(hak_free(q), expect("free", q, "interior pointer \\(inside a large block\\)"));
    EXPECT_DEATH(hak_realloc(q, 16),
                 expect("realloc", q, "interior pointer \\(inside a large block\\)"));
  }
  l[5 * kRegion - 1] = 1;  // still ours, whole
  hak_free(l);
}

// C23's sized frees: the size and alignment given must be the block's.
TEST_F(Death, SizedFreeOfTheWrongSizeOrAlignment) {
  char* p = static_cast<char*>(hak_malloc(48));  // a 64-byte block
  EXPECT_DEATH(hak_free_sized(p, 65), expect("free_sized", p, "size larger than the block"));
  char* a = static_cast<char*>(hak_aligned_alloc(64, 64));
  char* b = static_cast<char*>(hak_aligned_alloc(64, 64));
  EXPECT_DEATH(hak_free_aligned_sized(a, 64, 100),
               expect("free_aligned_sized", a, "size larger than the block"));
  // A 64-aligned block that is not 4096-aligned (of two neighbours, one is not).
  char* c = (reinterpret_cast<uintptr_t>(a) & 4095) ? a : b;
  EXPECT_DEATH(hak_free_aligned_sized(c, 4096, 64),
               expect("free_aligned_sized", c, "block not aligned to the given alignment"));
  hak_free_sized(p, 48);
  hak_free_aligned_sized(a, 64, 64);
  hak_free_aligned_sized(b, 64, 64);
  hak_free_sized(nullptr, 8);
}

TEST_F(Death, PointerIntoARegionHeaderOnTheBlockGrid) {
  char* p = static_cast<char*>(hak_malloc(64));
  char* header =
      reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{(2 << 20) - 1}) + 64;
  EXPECT_DEATH(hak_free(header),
               expect("free", header, "invalid pointer \\(inside a region header\\)"));
  hak_free(p);
}

TEST_F(Death, MisalignedPointer) {
  char* p = static_cast<char*>(hak_malloc(64));
  EXPECT_DEATH(hak_free(p + 3), expect("free", p + 3, "misaligned pointer"));
  char* l = static_cast<char*>(hak_malloc(1 << 20));
  EXPECT_DEATH(hak_free(l + 1), expect("free", l + 1, "misaligned pointer"));
  hak_free(p);
  hak_free(l);
}

TEST_F(Death, DoubleFree) {
  void* p = hak_malloc(64);
  void* keep = hak_malloc(64);  // keeps the region mapped
  hak_free(p);
  EXPECT_DEATH(hak_free(p), expect("free", p, "double free"));
  void* m = hak_malloc(3000);
  void* keep_m = hak_malloc(3000);
  hak_free(m);
  EXPECT_DEATH(hak_free(m), expect("free", m, "double free"));
  hak_free(keep);
  hak_free(keep_m);
}

TEST_F(Death, DoubleFreeByAnotherThread) {
  hk::Context* a = hk::context_create();
  hk::Context* b = hk::context_create();
  void* p;
  void* keep;
  {
    hk::Use use(a);
    p = hak_malloc(32);
    keep = hak_malloc(32);
  }
  {
    hk::Use use(b);
    hak_free(p);  // remote free, pending
    EXPECT_DEATH(hak_free(p), expect("free", p, "double free"));
  }
  {
    hk::Use use(a);
    EXPECT_DEATH(hak_free(p), expect("free", p, "double free"));  // owner, pending remote
  }
  {
    hk::Use use(a);
    hak_free(keep);
  }
  hk::context_exit(a);
  hk::context_exit(b);
}

TEST_F(Death, FreeOfAReleasedRegion) {
  fresh_settings(0);
  void* p = hak_malloc(2048);
  hak_free(p);  // the region is released: p points at unmapped memory now
  EXPECT_DEATH(hak_free(p), expect("free", p, "invalid pointer"));
  fresh_settings(1);
}

TEST_F(Death, ReallocOfABadPointer) {
  char* p = static_cast<char*>(hak_malloc(64));
  EXPECT_DEATH(hak_realloc(p + 8, 100), expect("realloc", p + 8, "interior pointer"));
  int local = 0;
  EXPECT_DEATH(hak_realloc(&local, 100), expect("realloc", &local, "invalid pointer"));
  hak_free(p);
}

TEST_F(Death, UsableSizeOfABadPointer) {
  int local = 0;
  EXPECT_DEATH(hak_malloc_usable_size(&local),
               expect("malloc_usable_size", &local, "invalid pointer"));
}
