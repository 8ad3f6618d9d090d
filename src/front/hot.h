// The malloc and free fast paths: one short function each; everything else out of line.
#pragma once

#include <cstddef>

#include "common/base.h"
#include "config/config.h"
#include "thread/thread_cache.h"

namespace hak {

// zero: calloc (the first `size` bytes read as zero).
void* malloc_large_slow(size_t size, bool zero = false) noexcept;
void free_slow(void* p, const char* call) noexcept;
HAK_COLD void free_bad_block(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;
// The alloc bit says the block is not live: a double free, or a grid position outside
// the blocks.
HAK_COLD void free_bad_state(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;

// Every slot (tiny, ULTRA, mid) takes the same path: the box of its slot.
HAK_INLINE void* malloc_fast(size_t size) noexcept {
  unsigned c;
  if (HAK_LIKELY(size <= kTinyMax))  // one compare on the tiny path
    c = g_tiny_slot[(size + 7) >> 3];
  else if (size <= kMidMax)
    c = size_to_class(size);
  else
    return malloc_large_slow(size);
  ThreadCache* tc = tl_tc;
  Box& box = tc->box[c];
  if (HAK_LIKELY(box.free != nullptr)) return box_pop(tc, box);
  return malloc_slot_slow(c);
}

// SuperSlab, ULTRA and mid regions alike: validate (block boundary, live), then push on
// the box when the block is in the box's region, else on its slab's list. Large, null and
// invalid pointers out of line.
HAK_INLINE void free_fast(void* p, const char* call) noexcept {
  RegionKind k = region_kind_of(p);
  // kSuperSlab (1), kUltra (2) and kMid (3) in one test.
  if (HAK_LIKELY(static_cast<unsigned>(k) - 1u < 3u)) {
    SuperSlab* ss = superslab_of(p);
    uintptr_t off = reinterpret_cast<uintptr_t>(p) - ss->base();
    if (HAK_UNLIKELY(!superslab_on_grid(ss, off))) return free_bad_block(ss, p, off, call);
    ThreadCache* tc = tl_tc;
    if (HAK_LIKELY(ss->owner.load(std::memory_order_relaxed) == tc)) {
      BlockBit b = superslab_bit(ss, off);
      Atomic<uint64_t>& aw = ss->bits()[b.word].alloc;
      uint64_t a = aw.load(std::memory_order_relaxed);
      // relaxed: remote bits of our own region only need to be seen once set by a free
      // that happened before this one in the program (the double-free case).
      uint64_t r = ss->bits()[b.word].remote.load(std::memory_order_relaxed);
      if (HAK_UNLIKELY(((a & ~r) & b.mask) == 0)) return free_bad_state(ss, p, off, call);
      aw.store(a & ~b.mask, std::memory_order_relaxed);
      HAK_MEM_FREED(p, ss->block_size);
      FreeBlock* fb = static_cast<FreeBlock*>(p);
      Box& box = tc->box[ss->slot];
      if (HAK_LIKELY(ss == box.seg)) {
        link_set(fb, box.free);
        box.free = fb;
      } else {
        superslab_put(ss, fb);
        // A full region has a free block again: back to the partial list, so refills find
        // it without walking the full list. One test, off the box branch; a tail call (the
        // count below is done there), so the fast path saves no register for it.
        if (HAK_UNLIKELY(ss->list == SuperSlabList::kFull)) return superslab_refilled(tc, ss);
      }
      // active_local counts live blocks and pending remote frees alike: 0 means empty with
      // nothing on its way. A region emptied while remote frees are pending waits for the
      // next collection point (SPEC section 3), so a local free never reads remote_pending,
      // on the line remote freers write.
      uint32_t left = ss->active_local.load(std::memory_order_relaxed) - 1;
      ss->active_local.store(left, std::memory_order_relaxed);
      if (HAK_UNLIKELY(left == 0)) superslab_check_empty(tc, ss);
      return;
    }
    return superslab_free_remote(ss, p, off, call);
  }
  free_slow(p, call);
}

}  // namespace hak
