// Pointer -> region kind in O(1): one byte per 2 MiB of the 47-bit address space.
// The table lives in zero-initialised static storage: pages the kernel maps lazily (read
// as the zero page until written), so lookups of wild or foreign pointers never touch
// memory that is not mapped.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/base.h"

namespace hak {

enum class RegionKind : uint8_t {
  kNone = 0,
  kSuperSlab = 1,  // v3 tiny classes
  kUltra = 2,      // C7 ULTRA segment
  kMid = 3,        // mid classes (the same class-region engine, larger blocks)
  kLargeHead = 4,  // first region of a large run
  // The region holding the user pointer of a run aligned to 2 MiB or more (a back pointer
  // to the head sits just below it). The run's other regions stay kNone: a run costs
  // O(1) map entries whatever its length (large.cc).
  kLargeTail = 8,
};

// The class regions (SUPERSLAB, ULTRA, MID) are the kinds with one of the two low bits
// set, so the free path routes them with one test of the map byte.
HAK_INLINE bool is_class_region(RegionKind k) {
  return (static_cast<unsigned>(k) & 3u) != 0;
}

inline constexpr size_t kRegionMapEntries = size_t{1} << (kAddressBits - kRegionShift);
extern std::atomic<uint8_t> g_region_map[kRegionMapEntries];

namespace arith {
// The map entry of the region holding `addr`, and whether that entry is past the map (the
// address is not user space: it cannot be hakmem's).
template <class W>
HAK_INLINE constexpr word64<W> region_map_index(word64<W> addr) {
  return addr >> kRegionShift;
}
template <class W>
HAK_INLINE constexpr boolean<W> region_map_index_outside(word64<W> idx) {
  return idx >= kRegionMapEntries;
}
}  // namespace arith

HAK_INLINE RegionKind region_kind_of(const void* p) noexcept {
  uintptr_t idx = arith::region_map_index<NativeWord>(reinterpret_cast<uintptr_t>(p));
  if (HAK_UNLIKELY(arith::region_map_index_outside<NativeWord>(idx))) return RegionKind::kNone;
  // relaxed: a free of a block always follows the malloc that returned it (happens-before
  // via the program), which follows the store below; a racy wild pointer may read either.
  return static_cast<RegionKind>(g_region_map[idx].load(std::memory_order_relaxed));
}

// Marks `count` consecutive regions starting at `base`; the first gets `first`, the rest
// `rest`. Called before the region's memory is handed out, and with kNone before unmap.
void region_map_set(uintptr_t base, size_t count, RegionKind first, RegionKind rest) noexcept;

}  // namespace hak
