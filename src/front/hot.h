// The malloc and free fast paths: one short function each; everything else out of line.
#pragma once

#include <cstddef>

#include "common/base.h"
#include "config/config.h"
#include "region/remote.h"
#include "thread/context.h"

namespace hak {

// zero: calloc (the first `size` bytes read as zero).
void* malloc_large_slow(size_t size, bool zero = false) noexcept;
void free_slow(void* p, const char* call) noexcept;
HAK_COLD void free_bad_block(Region* r, void* p, uintptr_t off, const char* call) noexcept;
// The block's state is not kLive: a double free, or a grid position outside
// the blocks.
HAK_COLD void free_bad_state(Region* r, void* p, uintptr_t off, const char* call) noexcept;

// Every slot (tiny, ULTRA, mid) takes the same path: the box of its slot.
HAK_INLINE void* malloc_fast(size_t size) noexcept {
  unsigned c;
  if (HAK_LIKELY(size <= kTinyMax))  // one compare on the tiny path
    c = g_tiny_slot[size];
  else if (size <= kMidMax)
    c = size_to_class(size);
  else
    return malloc_large_slow(size);
  Context* ctx = tl_context;
  Box& box = ctx->box[c];
  if (HAK_LIKELY(box.free != nullptr)) return box_pop(ctx, box);
  return malloc_slot_slow(c);
}

// Tiny, ULTRA and mid regions alike: validate (block boundary, live), then push on
// the region's local list (Region::local_head): the box when the block is in the box's
// region, else that region's spill, with no branch on which (a working set spread over
// several regions of a class mispredicted a box test on a third of its frees). A region
// the caller does not own goes out of line (free_remote). Large, null and
// invalid pointers out of line.
HAK_INLINE void free_fast(void* p, const char* call) noexcept {
  RegionKind k = region_kind_of(p);
  if (HAK_LIKELY(is_class_region(k))) {
    Region* r = region_of(p);
    uintptr_t off = reinterpret_cast<uintptr_t>(p) - r->base();
    // One multiply gives the block index and, with its offset, the boundary check
    // (region_on_grid, in the same two steps).
    uint64_t i = region_block_index(r, off);
    if (HAK_UNLIKELY(!region_block_starts_at(r, i, off))) return free_bad_block(r, p, off, call);
    Context* ctx = tl_context;
    // relaxed: only ctx stores ctx there (its own earlier step); another value means another
    // context's region, or one without owner.
    if (HAK_UNLIKELY(r->owner.load(std::memory_order_relaxed) != ctx))
      return free_remote(r, p, off, call);
    Atomic<uint8_t>& st = r->states()[i];
    // relaxed: a kRemote set by another context only needs to be seen once a free that
    // happened before this one in the program set it (the double-free case).
    if (HAK_UNLIKELY(state_not_live(st))) return free_bad_state(r, p, off, call);
    st.store(kFree, std::memory_order_relaxed);
    HAK_MEM_FREED(p, r->block_size);
    FreeBlock* fb = static_cast<FreeBlock*>(p);
    FreeBlock** head = r->local_head;
    FreeBlock* next = *head;
    link_set(fb, next);
    *head = fb;
    // The list was empty: a spill that starts may bring its region back from the full
    // list; free_list_started counts the free and tests for empty itself. Tail calls: the
    // path keeps no frame.
    if (HAK_UNLIKELY(next == nullptr)) return free_list_started(ctx, r);
    // active_local counts live blocks and pending remote frees alike: 0 means empty with
    // nothing on its way. A region emptied while remote frees are pending waits for the
    // next collection point (SPEC section 3), so a local free never reads the remote line,
    // which remote freers write. One instruction counts and tests (OwnerCount).
    if (HAK_UNLIKELY(r->active_local.decrement_is_zero())) region_check_empty(ctx, r);
    return;
  }
  free_slow(p, call);
}

}  // namespace hak
