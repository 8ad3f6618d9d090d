// Every live region, in one list, for inspect and the exit report. Touched only when a
// region is mapped or unmapped (cold), under one lock.
#pragma once

#include "common/base.h"

namespace hak {

struct RegionLink {
  RegionLink* next = nullptr;
  RegionLink* prev = nullptr;
  uint64_t serial = 0;  // distinct for every region ever registered (tells a remap apart)
};

void registry_add(RegionLink* l) noexcept;
void registry_remove(RegionLink* l) noexcept;
// Calls fn(base) for each live region's head, under the registry lock (fn must not map,
// unmap or allocate through hakmem).
template <class Fn>
void registry_for_each(Fn&& fn);

SpinLock& registry_lock() noexcept;
RegionLink* registry_head() noexcept;

template <class Fn>
void registry_for_each(Fn&& fn) {
  SpinGuard g(registry_lock());
  for (RegionLink* l = registry_head(); l; l = l->next)
    fn(reinterpret_cast<uintptr_t>(l) & ~kRegionMask);
}

}  // namespace hak
