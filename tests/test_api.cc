// The malloc family through hak_*: glibc's results and errno values.
#include <errno.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <vector>

#include "regionmap/region_map.h"
#include "support.h"

TEST(Api, MallocZeroIsAUniqueFreeablePointer) {
  void* a = hak_malloc(0);
  void* b = hak_malloc(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  hak_free(a);
  hak_free(b);
}

TEST(Api, AlignmentOfEverySize) {
  std::vector<void*> v;
  for (size_t s = 1; s <= 300000; s = s < 64 ? s + 1 : s * 5 / 4) {
    void* p = hak_malloc(s);
    ASSERT_NE(p, nullptr);
    size_t want = s >= 16 ? 16 : (s <= 8 ? 8 : 16);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % want, 0u) << s;
    EXPECT_GE(hak_malloc_usable_size(p), s);
    fill(p, s, static_cast<uint8_t>(s));
    v.push_back(p);
  }
  size_t s = 1;
  for (void* p : v) {
    EXPECT_TRUE(check(p, s, static_cast<uint8_t>(s))) << s;
    hak_free(p);
    s = s < 64 ? s + 1 : s * 5 / 4;
  }
}

TEST(Api, ImpossibleSizesAreEnomem) {
  errno = 0;
  EXPECT_EQ(hak_malloc(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_malloc(size_t{PTRDIFF_MAX} + 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_calloc(SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_reallocarray(nullptr, SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(hak_pvalloc(SIZE_MAX - 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

// glibc's own entry points: the reference on this machine, whatever malloc the test
// program has (sanitizers replace malloc, not these).
extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_memalign(size_t, size_t);
extern "C" void __libc_free(void*);

// Requests larger than the machine can commit: glibc's mmap path lets the kernel's
// overcommit policy refuse them (NULL, ENOMEM); hakmem must answer the same, not hand
// out memory that kills the program when touched.
TEST(Api, UncommittableSizesFailAsInGlibc) {
  struct Case {
    const char* what;
    void* (*glibc)();
    void* (*hakmem)();
  };
  const Case cases[] = {
      {"malloc(2^45)", [] { return __libc_malloc(size_t{1} << 45); },
       [] { return hak_malloc(size_t{1} << 45); }},
      {"calloc(1, 2^44)", [] { return __libc_calloc(1, size_t{1} << 44); },
       [] { return hak_calloc(1, size_t{1} << 44); }},
      {"memalign(2^44, 1)", [] { return __libc_memalign(size_t{1} << 44, 1); },
       [] { return hak_memalign(size_t{1} << 44, 1); }},
  };
  // Sanitizers and Valgrind intercept the __libc_* names too (and abort on such sizes):
  // there the reference is the kernel's policy itself (mode 1 commits anything).
  bool always_overcommit = false;
  if (FILE* f = fopen("/proc/sys/vm/overcommit_memory", "r")) {
    always_overcommit = fgetc(f) == '1';
    fclose(f);
  }
  for (const Case& c : cases) {
    errno = 0;
    void* g = foreign_malloc() ? (always_overcommit ? &errno : nullptr) : c.glibc();
    int g_errno = foreign_malloc() ? ENOMEM : errno;
    errno = 0;
    void* h = c.hakmem();
    int h_errno = errno;
    EXPECT_EQ(h == nullptr, g == nullptr) << c.what << ": glibc " << g << ", hakmem " << h;
    if (!g) {
      EXPECT_EQ(h_errno, g_errno) << c.what;
    }
    if (g && !foreign_malloc()) __libc_free(g);
    if (h) hak_free(h);
  }
}

// A large run costs O(1) region map entries: the head, and for runs aligned to 2 MiB or
// more the user pointer's region. The others stay kNone (their route is still large).
TEST(Api, LargeRunTouchesConstantRegionMapEntries) {
  constexpr size_t kRegion = 2u << 20;
  for (size_t align : {size_t{0}, size_t{4} << 20}) {
    size_t size = size_t{64} << 20;
    char* p = static_cast<char*>(align ? hak_memalign(align, size) : hak_malloc(size));
    ASSERT_NE(p, nullptr);
    uintptr_t head = (reinterpret_cast<uintptr_t>(p) - 1) & ~uintptr_t{kRegion - 1};
    if (align) head = reinterpret_cast<uintptr_t>(p) - align;
    size_t entries = 0;
    for (uintptr_t r = head; r < reinterpret_cast<uintptr_t>(p) + size; r += kRegion)
      entries += hak::region_kind_of(reinterpret_cast<void*>(r)) != hak::RegionKind::kNone;
    EXPECT_EQ(entries, align ? 2u : 1u) << "align " << align;
    EXPECT_EQ(hk::route_of(p + size - 1), hk::Route::kLarge);
    EXPECT_GE(hak_malloc_usable_size(p), size);
    EXPECT_EQ(hk::route_of(p + size / 2), hk::Route::kLarge);
    hak_free(p);
  }
}

TEST(Api, CallocZeroesReusedMemory) {
  for (size_t s : {16u, 1000u, 5000u, 100000u, 1u << 20}) {
    void* d = hak_malloc(s);
    memset(d, 0xAB, s);
    hak_free(d);
    unsigned char* p = static_cast<unsigned char*>(hak_calloc(1, s));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < s; ++i) ASSERT_EQ(p[i], 0) << s << " @" << i;
    hak_free(p);
  }
}

// inspect::set_region_recycling (the harnesses' OS layer): a region hakmem unmapped comes
// back at the next map as fresh memory would, zero where it was written.
TEST(Api, RecycledRegionsComeBackZeroed) {
  hk::trim();
  hk::set_region_recycling(true);
  constexpr size_t kSize = size_t{1} << 20;  // a large block: one 2 MiB run
  auto* p = static_cast<unsigned char*>(hak_malloc(kSize));
  ASSERT_NE(p, nullptr);
  memset(p, 0xab, kSize);
  hak_free(p);
  hk::trim();  // the cached run is unmapped: into the recycler
  // Kept, but not accessible: a use after release still crashes, as after munmap.
  EXPECT_DEATH(*static_cast<volatile unsigned char*>(p) = 1, "");
  auto* q = static_cast<unsigned char*>(hak_calloc(1, kSize));  // a fresh run: no clearing
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, p) << "the run did not come from the recycler";
  size_t nonzero = 0;
  for (size_t i = 0; i < kSize; ++i) nonzero += q[i] != 0;
  EXPECT_EQ(nonzero, 0u);
  hak_free(q);
  hk::trim();
  hk::set_region_recycling(false);
}

TEST(Api, ReallocKeepsContentsAcrossClassesAndPaths) {
  void* p = hak_realloc(nullptr, 10);
  ASSERT_NE(p, nullptr);
  fill(p, 10, 7);
  size_t prev = 10;
  for (size_t s : {20u, 1000u, 1025u, 70000u, 300000u, 5u << 20, 100u, 3u}) {
    void* q = hak_realloc(p, s);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(check(q, std::min(prev, s), 7)) << s;
    fill(q, s, 7);
    p = q;
    prev = s;
  }
  errno = 0;
  EXPECT_EQ(hak_realloc(p, 0), nullptr);  // glibc: frees, returns NULL
}

// Shrinking keeps the block when the one malloc would give is not much smaller, and a
// large block shrunk in place gives its tail regions back.
TEST(Api, ReallocShrinksInPlace) {
  void* p = hak_malloc(8);
  ASSERT_NE(p, nullptr);
  void* p2 = hak_realloc(p, 3);
  EXPECT_EQ(p2, p) << "8 -> 3 bytes: malloc(3) is the same 8-byte class";
  void* q = hak_malloc(1024);
  void* q2 = hak_realloc(q, 600);
  EXPECT_EQ(q2, q);
  hak_free(p2);
  hak_free(q2);

  hk::trim();
  constexpr size_t kMiB = size_t{1} << 20;
  char* big = static_cast<char*>(hak_malloc(64 * kMiB));
  ASSERT_NE(big, nullptr);
  fill(big, 4096, 0x3c);
  uint64_t mapped = hk::os_counts().bytes_mapped;
  ASSERT_EQ(hak_realloc(big, 41 * kMiB), big);
  EXPECT_TRUE(check(big, 4096, 0x3c));
  EXPECT_GE(hak_malloc_usable_size(big), 41 * kMiB);
  EXPECT_LT(hak_malloc_usable_size(big), 44 * kMiB);
  // The run was 66 MiB (header page + 64 MiB, in regions); now 42 MiB.
  EXPECT_EQ(mapped - hk::os_counts().bytes_mapped, 24 * kMiB);
  hak_free(big);
  hk::trim();
}

// Growing a large block moves its pages (mremap) instead of copying them: the new
// block's old part faults nothing in.
TEST(Api, ReallocGrowsLargeBlocksWithoutCopying) {
  constexpr size_t kMiB = size_t{1} << 20;
  constexpr size_t kOld = 64 * kMiB;
  char* p = static_cast<char*>(hak_malloc(kOld));
  ASSERT_NE(p, nullptr);
  // 4 KiB pages, so a copy would fault in 16384 of them (huge pages: only 32).
  madvise(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{4095}), kOld,
          MADV_NOHUGEPAGE);
  for (size_t i = 0; i < kOld; i += 4096) p[i] = static_cast<char>(i >> 12);
  p[kOld - 1] = 0x7f;
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  char* q = static_cast<char*>(hak_realloc(p, 2 * kOld));
  getrusage(RUSAGE_SELF, &after);
  ASSERT_NE(q, nullptr);
  // Under Valgrind the moved pages' shadow is Valgrind's to move: it faults in its own.
  if (!RUNNING_ON_VALGRIND) {
    EXPECT_LT(after.ru_minflt - before.ru_minflt, 1000) << "faults during the realloc";
  }
  bool intact = q[kOld - 1] == 0x7f;
  for (size_t i = 0; i < kOld; i += 4096) intact &= q[i] == static_cast<char>(i >> 12);
  EXPECT_TRUE(intact);
  EXPECT_GE(hak_malloc_usable_size(q), 2 * kOld);
  q[2 * kOld - 1] = 1;  // the new part is usable
  EXPECT_EQ(hk::route_of(q), hk::Route::kLarge);
  hak_free(q);
}

TEST(Api, ReallocFailureLeavesTheBlock) {
  void* p = hak_malloc(100);
  fill(p, 100, 3);
  errno = 0;
  EXPECT_EQ(hak_realloc(p, SIZE_MAX - 100), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(check(p, 100, 3));
  hak_free(p);
}

TEST(Api, PosixMemalign) {
  void* p = reinterpret_cast<void*>(0x1234);
  EXPECT_EQ(hak_posix_memalign(&p, 0, 10), EINVAL);
  EXPECT_EQ(hak_posix_memalign(&p, 4, 10), EINVAL);
  EXPECT_EQ(hak_posix_memalign(&p, 24, 10), EINVAL);
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1234));  // untouched on failure
  EXPECT_EQ(hak_posix_memalign(&p, 64, SIZE_MAX - 1000), ENOMEM);
  for (size_t a = 8; a <= (size_t{8} << 20); a *= 2) {
    for (size_t s : {size_t{0}, size_t{1}, size_t{100}, a, a + 1, size_t{300000}}) {
      ASSERT_EQ(hak_posix_memalign(&p, a, s), 0) << a << " " << s;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u) << a << " " << s;
      EXPECT_GE(hak_malloc_usable_size(p), s);
      fill(p, s, 1);
      hak_free(p);
    }
  }
}

TEST(Api, MemalignAndAlignedAllocFollowGlibc) {
  // glibc 2.36: a non-power-of-two alignment is rounded up; absurd ones are EINVAL.
  void* p = hak_memalign(48, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  hak_free(p);
  p = hak_aligned_alloc(4096, 10);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
  hak_free(p);
  errno = 0;
  EXPECT_EQ(hak_memalign(SIZE_MAX / 2 + 2, 1), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // What the system's glibc does with the same requests.
  if (foreign_malloc()) return;
  errno = 0;
  volatile size_t absurd = SIZE_MAX / 2 + 2;  // not a constant: the compiler would warn
  void* g = memalign(absurd, 1);
  EXPECT_EQ(g, nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Api, VallocAndPvalloc) {
  void* p = hak_valloc(10);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
  hak_free(p);
  p = hak_pvalloc(5000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
  EXPECT_GE(hak_malloc_usable_size(p), 8192u);
  hak_free(p);
  p = hak_pvalloc(0);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(hak_malloc_usable_size(p), 4096u);
  hak_free(p);
}

TEST(Api, UsableSizeOfNullIsZeroAndFreeNullIsANoOp) {
  EXPECT_EQ(hak_malloc_usable_size(nullptr), 0u);
  hak_free(nullptr);
}
