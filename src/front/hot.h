// The malloc and free fast paths: one short function each; everything else out of line.
#pragma once

#include <cstddef>

#include "common/base.h"
#include "config/config.h"
#include "thread/thread_cache.h"

namespace hak {

void* malloc_large_slow(size_t size) noexcept;
void free_slow(void* p, const char* call) noexcept;
HAK_COLD void free_bad_block(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;
// The alloc bit says the block is not live: a double free, or a grid position outside
// the blocks.
HAK_COLD void free_bad_state(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;

HAK_INLINE void* malloc_fast(size_t size) noexcept {
  if (HAK_LIKELY(size <= kMidMax)) {
    unsigned c = size_to_slot(size);
    ThreadCache* tc = tl_tc;
    if (c == kUltraSlot) {
      if (HAK_LIKELY(tc->ultra.free != nullptr)) return ultra_pop(tc);
      return ultra_malloc_slow();
    }
    if (HAK_LIKELY(tc->mag[c].count != 0)) return magazine_pop(tc, c);
    return malloc_class_slow(c);
  }
  return malloc_large_slow(size);
}

// ULTRA free: page by mask, push, no header check (hardened builds check like v3).
HAK_INLINE void ultra_free(void* p, const char* call) noexcept {
  SuperSlab* seg = superslab_of(p);
  uintptr_t off = reinterpret_cast<uintptr_t>(p) - seg->base();
  if constexpr (kHardened) {
    if (HAK_UNLIKELY(!superslab_on_grid(seg, off))) return free_bad_block(seg, p, off, call);
  }
  ThreadCache* tc = tl_tc;
  if (HAK_LIKELY(seg->owner.load(std::memory_order_relaxed) == tc)) {
    if constexpr (kHardened) {
      BlockBit b = superslab_bit(seg, off);
      std::atomic<uint64_t>& aw = seg->bits()[b.word].alloc;
      uint64_t a = aw.load(std::memory_order_relaxed);
      uint64_t r = seg->bits()[b.word].remote.load(std::memory_order_relaxed);
      if (HAK_UNLIKELY(((a & ~r) & b.mask) == 0)) return free_bad_state(seg, p, off, call);
      aw.store(a & ~b.mask, std::memory_order_relaxed);
    }
    unsigned pg = static_cast<unsigned>(off >> kSlabShift);
    SlabMeta& m = seg->slabs[pg];
    --m.used;
    FreeBlock* b = static_cast<FreeBlock*>(p);
    HAK_MEM_FREED(b, kTinyMax);
    if (HAK_LIKELY(seg == tc->ultra.seg)) {
      link_set(b, tc->ultra.free);
      tc->ultra.free = b;
    } else {
      link_set(b, m.free);
      m.free = b;
      seg->slab_free_mask |= 1u << pg;
    }
    uint32_t left = seg->active_local.load(std::memory_order_relaxed) - 1;
    seg->active_local.store(left, std::memory_order_relaxed);
    if (HAK_UNLIKELY(left == seg->remote_pending.load(std::memory_order_relaxed)))
      superslab_check_empty(tc, seg);
    return;
  }
  superslab_free_remote(seg, p, off, call);
}

// ULTRA first (the seed's overlay), then tiny and mid SuperSlabs inline; large, null and
// invalid pointers out of line.
HAK_INLINE void free_fast(void* p, const char* call) noexcept {
  RegionKind k = region_kind_of(p);
  if (k == RegionKind::kUltra) return ultra_free(p, call);
  // kSuperSlab (1) and kMid (3) in one test.
  if (HAK_LIKELY((static_cast<unsigned>(k) & ~2u) == 1u)) {
    SuperSlab* ss = superslab_of(p);
    uintptr_t off = reinterpret_cast<uintptr_t>(p) - ss->base();
    if (HAK_UNLIKELY(!superslab_on_grid(ss, off))) return free_bad_block(ss, p, off, call);
    ThreadCache* tc = tl_tc;
    if (HAK_LIKELY(ss->owner.load(std::memory_order_relaxed) == tc)) {
      BlockBit b = superslab_bit(ss, off);
      std::atomic<uint64_t>& aw = ss->bits()[b.word].alloc;
      uint64_t a = aw.load(std::memory_order_relaxed);
      // relaxed: remote bits of our own region only need to be seen once set by a free
      // that happened before this one in the program (the double-free case).
      uint64_t r = ss->bits()[b.word].remote.load(std::memory_order_relaxed);
      if (HAK_UNLIKELY(((a & ~r) & b.mask) == 0)) return free_bad_state(ss, p, off, call);
      aw.store(a & ~b.mask, std::memory_order_relaxed);
      Magazine& mg = tc->mag[ss->slot];
      if (HAK_UNLIKELY(mg.count == mg.cap)) return magazine_flush_push(tc, ss, p);
      HAK_MEM_FREED(p, ss->block_size);
      tc->items[ss->slot][mg.count++] = p;
      uint32_t left = ss->active_local.load(std::memory_order_relaxed) - 1;
      ss->active_local.store(left, std::memory_order_relaxed);
      if (HAK_UNLIKELY(left == ss->remote_pending.load(std::memory_order_relaxed)))
        superslab_check_empty(tc, ss);
      return;
    }
    return superslab_free_remote(ss, p, off, call);
  }
  free_slow(p, call);
}

}  // namespace hak
