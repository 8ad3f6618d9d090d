#include "regionmap/region_map.h"

namespace hak {

std::atomic<uint8_t> g_region_map[kRegionMapEntries];

void region_map_set(uintptr_t base, size_t count, RegionKind first, RegionKind rest) noexcept {
  uintptr_t idx = base >> kRegionShift;
  for (size_t i = 0; i < count && idx + i < kRegionMapEntries; ++i)
    g_region_map[idx + i].store(static_cast<uint8_t>(i == 0 ? first : rest),
                                std::memory_order_relaxed);
}

}  // namespace hak
