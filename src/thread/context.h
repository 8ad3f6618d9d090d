// Context: the per-thread context. Per slot (size class, or the ULTRA slot): a box (the
// free list of the region it hands blocks out of), the current region and slab it refills
// from, its owned regions (partial / full lists) and its count of warm (empty, kept)
// regions. One OS thread normally has one; inspect may run several in one OS thread.
#pragma once

#include <cstdint>

#include "common/base.h"
#include "region/lifecycle.h"
#include "region/region.h"
#include "tiny/size_class.h"

namespace hak {

// The thread's cache of one slot: free blocks of one owned region, the box's region
// (SlotState::box_region), any slab, in a LIFO list (the block reused next is the one just
// freed, still in cache). malloc pops it; a free into the box's region pushes on it, a free
// into another owned region pushes on that region's spill (both through the region's
// local_head: region.h), which a refill takes whole into the box when it picks the region.
// Every slot works the same way, so the fast paths have no branch on the class (the seed's
// ULTRA box, for every class). One pointer: malloc_fast indexes the boxes with a scaled
// load, and finds a block's region from the block's address (every block of a box is in
// the box's region), so the boxes of all 41 slots take 6 cache lines.
struct Box {
  FreeBlock* free = nullptr;  // nullptr in the sentinel context: every pop misses
};

// Blocks carved into a box at once from a fresh slab (the rest stay uncarved).
inline constexpr uint32_t kCarveBatch = 64;

struct SlotState {
  // The region the box hands out blocks of, which its refills also carve from: nullptr
  // until the first refill, or after a release.
  Region* box_region = nullptr;
  // The slab of the box's region that the box was last filled from, and that a refill
  // carves from next (its pages stay when the region's other pages are given back).
  uint32_t box_slab = 0;
  uint32_t warm_count = 0;
  Region* partial = nullptr;  // owned, with free or uncarved blocks
  Region* full = nullptr;     // owned, neither
  // The region queue: the owned regions whose remote list is not empty, pushed by the
  // remote free that found the list empty (a lock-free stack through queue_next), taken
  // whole by the owner's collection (context.cc).
  Atomic<Region*> remote_regions{nullptr};
};

enum class ContextKind : uint8_t { kSentinel, kOsThread, kSimulated };

struct Context {
  Box box[kNumSlots];          // first: the fast paths touch only this and the region
  SlotState slots[kNumSlots];  // per slot: each class, and kUltraSlot
  // Warm regions whose pages go back once their purge is due, oldest first (the delay is
  // one for all, so that is also the order of their due times).
  Region* purge_head = nullptr;
  Region* purge_tail = nullptr;
  // The next refill at or after this time collects every slot (remote frees strand no
  // region of a slot the thread stopped allocating from).
  uint64_t collect_at_ms = 0;
  ContextKind kind = ContextKind::kSentinel;
  Context* reg_next = nullptr;  // registry of contexts (cold)
  Context* reg_prev = nullptr;
  uint64_t id = 0;
  // Refill collections and the regions they visited, for inspect. Written by the owner
  // alone (relaxed load and store: no locked instruction), read by inspect.
  std::atomic<uint64_t> refill_collections{0};
  std::atomic<uint64_t> refill_region_visits{0};
};

// The calling thread's context; the sentinel until its first allocation.
extern constinit thread_local Context* tl_context __attribute__((tls_model("initial-exec")));
extern Context g_sentinel;

// Hands out the box's first block (box.free != nullptr): it becomes live.
HAK_INLINE void* box_pop(Context* ctx, Box& box);

// --- cold paths (context.cc) ---
// The thread key (its destructor exits the thread's context). No allocation.
void thread_init_once() noexcept;
// The fork handlers; from the library constructor only (see config.cc).
void thread_register_atfork() noexcept;
// The box of `slot` is empty: refills it and returns a live block, or nullptr (errno =
// ENOMEM).
void* malloc_slot_slow(unsigned slot) noexcept;
void* box_refill_slow(unsigned slot) noexcept;
// calloc of `bytes` (> kTinyMax, <= kMidMax) from mid `slot`: a free block of the box is
// cleared; otherwise one block is carved from uncarved memory, which reads as zero but in
// its partial first and last pages (src/region/region.h), so only those are cleared and
// pages calloc would fault in for nothing stay untouched. nullptr: errno = ENOMEM.
void* calloc_mid(unsigned slot, size_t bytes) noexcept;
// Gives the box's blocks back to their slabs (thread exit).
void box_flush(Context* ctx, unsigned slot) noexcept;
// Gives the spill's blocks back to their slabs (thread exit: the region loses its owner).
void spill_flush(Region* r) noexcept;
// Contexts.
Context* context_create(ContextKind kind) noexcept;
// Flushes caches, releases empty regions, abandons the rest; then frees the context.
void context_exit(Context* ctx) noexcept;
// The calling OS thread's context, created on first use (nullptr if out of memory).
Context* context_current() noexcept;
// How often a refill also collects the thread's other slots: the purge delay, at least
// 10 ms (a full collection visits every owned region).
inline constexpr uint32_t kCollectEveryMinMs = 10;
// Calls fn(ctx) for every live context, under the context registry lock.
template <class Fn>
void context_for_each(Fn&& fn);
SpinLock& context_registry_lock() noexcept;
Context* context_registry_head() noexcept;
// Refill collections so far and the regions they visited, over every context (inspect).
struct RefillCounts {
  uint64_t collections = 0, region_visits = 0;
};
RefillCounts context_refill_counts() noexcept;

template <class Fn>
void context_for_each(Fn&& fn) {
  SpinGuard g(context_registry_lock());
  for (Context* t = context_registry_head(); t; t = t->reg_next) fn(t);
}

// Makes the box's region and ctx->slots[slot].box_slab a slab with a block to give (refill:
// collects, adopts, takes from the pool or maps). False when out of memory.
bool context_ensure_slab(Context* ctx, unsigned slot) noexcept;

// The context's region lists of a slot (SlotState::partial and full).
inline Region*& slot_list(SlotState& sl, RegionList l) {
  return l == RegionList::kPartial ? sl.partial : sl.full;
}

inline void slot_list_unlink(SlotState& sl, Region* r) {
  region_list_unlink(slot_list(sl, r->list), r);
}

inline void slot_list_push(SlotState& sl, Region* r, RegionList l) {
  region_list_push(slot_list(sl, l), r, l);
}

// Keeps a region on the list that matches whether it has blocks to give.
inline void relist(SlotState& sl, Region* r) {
  RegionList want = r->has_free_space() ? RegionList::kPartial : RegionList::kFull;
  if (r->list == want) return;
  slot_list_unlink(sl, r);
  slot_list_push(sl, r, want);
}

// The box of `slot` hands out blocks of r from now on (its spill is empty): the frees of
// r push on the box, those of the box's previous region on its own spill again.
inline void box_set_region(Context* ctx, unsigned slot, Region* r) {
  Region*& region = ctx->slots[slot].box_region;
  if (region == r) return;
  if (Region* old = region) old->local_head = &old->spill;
  r->local_head = &ctx->box[slot].free;
  region = r;
}
// The box of `slot` drops its blocks and leaves its region.
inline void box_clear(Context* ctx, unsigned slot) {
  Region*& region = ctx->slots[slot].box_region;
  if (Region* old = region) old->local_head = &old->spill;
  region = nullptr;
  ctx->box[slot] = Box{};
}

// ---------------------------------------------------------------------------------------
HAK_INLINE void* box_pop(Context* ctx, Box& box) {
  FreeBlock* b = box.free;
  FreeBlock* next = link_next(b);
  box.free = next;
  __builtin_prefetch(next);  // the next malloc reads its link
  Region* r = region_of(b);  // the box's region
  HAK_MEM_ALLOCATED(b, r->usable());
  region_mark_live(r, reinterpret_cast<uintptr_t>(b) - r->base());
  if (HAK_UNLIKELY(r->active_local.increment_was_zero())) return region_left_empty(ctx, r, b);
  return b;
}

}  // namespace hak
