// Constants of the region geometry and small helpers shared by every part.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/atomic.h"
#include "common/word.h"

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_INLINE inline __attribute__((always_inline))
// Not instrumented for fuzzing coverage (clang): scans the lockstep harnesses run after
// every op, whose per-element comparison callbacks cost more than the scan itself.
#if defined(__clang__)
#define HAK_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define HAK_NO_COVERAGE
#endif
#define HAK_COLD __attribute__((cold, noinline))

namespace hak {

// Everything hakmem maps is a region: 2 MiB, 2 MiB-aligned (large objects: a run).
inline constexpr unsigned kRegionShift = 21;
inline constexpr size_t kRegionSize = size_t{1} << kRegionShift;
inline constexpr uintptr_t kRegionMask = kRegionSize - 1;
// A Region is split into 32 slabs of 64 KiB (the seed's geometry, fixed).
inline constexpr unsigned kSlabShift = 16;
inline constexpr size_t kSlabSize = size_t{1} << kSlabShift;
inline constexpr unsigned kSlabsPerRegion = kRegionSize / kSlabSize;
inline constexpr size_t kPageSize = 4096;
// User space on x86-64 is 47 bits; the region map covers exactly that.
inline constexpr unsigned kAddressBits = 47;

// Address arithmetic over a word policy (common/word.h): production runs these with
// NativeWord, formal/z3 proves them with bit-vectors.
namespace arith {
// n rounded up to a multiple of a (a power of two).
template <class W>
HAK_INLINE constexpr word64<W> align_up(word64<W> n, word64<W> a) {
  return (n + a - 1) & ~(a - 1);
}
template <class W>
HAK_INLINE constexpr boolean<W> is_pow2(word64<W> n) {
  return n != 0 && (n & (n - 1)) == 0;
}
// The base of the 2 MiB region that holds `addr`.
template <class W>
HAK_INLINE constexpr word64<W> region_base(word64<W> addr) {
  return addr & ~kRegionMask;
}
}  // namespace arith

inline constexpr size_t align_up(size_t n, size_t a) {
  return arith::align_up<NativeWord>(n, a);
}
inline constexpr bool is_pow2(size_t n) {
  return arith::is_pow2<NativeWord>(n);
}
HAK_INLINE uintptr_t region_base(const void* p) {
  return arith::region_base<NativeWord>(reinterpret_cast<uintptr_t>(p));
}

// One pause of a wait for another thread (the spins-th): a CPU pause, then yields.
void wait_pause(unsigned spins) noexcept;

// A test-and-test-and-set lock for the cold paths. It never allocates, so it can
// be used before anything else is initialised and inside fork handlers.
class SpinLock {
 public:
  void lock() noexcept;
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  // release: publishes the critical section to the next holder.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  // Only in a fork child, where the holder no longer exists.
  void reset_in_child() noexcept { locked_.store(false, std::memory_order_relaxed); }

 private:
  Atomic<bool> locked_{false};
};

class SpinGuard {
 public:
  explicit SpinGuard(SpinLock& l) noexcept : l_(l) { l_.lock(); }
  ~SpinGuard() { l_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace hak
