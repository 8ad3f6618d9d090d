// Context: the per-thread context. Per slot (size class, or the ULTRA slot): a box (the
// free list of the region it hands blocks out of), the current region and slab it refills
// from, its owned regions (partial / full lists) and its count of warm (empty, kept)
// regions. One OS thread normally has one; inspect may run several in one OS thread.
#pragma once

#include <cstdint>

#include "common/base.h"
#include "region/region.h"
#include "tiny/size_class.h"

namespace hak {

// The thread's cache of one slot: free blocks of one owned region (`seg`), any slab, in
// a LIFO list (the block reused next is the one just freed, still in cache). malloc pops
// it; a free into `seg` pushes on it, a free into another owned region pushes on that
// region's spill (both through the region's local_head: region.h), which a refill
// takes whole into the box when it picks the region. Every slot works the same way, so
// the fast paths have no branch on the class (the seed's ULTRA box, for every class).
struct Box {
  FreeBlock* free = nullptr;  // nullptr in the sentinel context: every pop misses
  Region* seg = nullptr;
};

// Blocks carved into a box at once from a fresh slab (the rest stay uncarved).
inline constexpr uint32_t kCarveBatch = 64;

struct SlotState {
  Region* cur = nullptr;
  uint32_t cur_slab = 0;
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
void box_flush(Box& box) noexcept;
// Gives the spill's blocks back to their slabs (thread exit: the region loses its owner).
void spill_flush(Region* r) noexcept;
// First live block of a region whose count was zero (it leaves the warm reserve);
// returns p.
void* region_left_empty(Context* ctx, Region* r, void* p) noexcept;
// After a local free found active_local == 0: the region is empty (release or keep).
void region_check_empty(Context* ctx, Region* r) noexcept;
// A local free found its list (the box, or r's spill) empty: a region on the full list
// whose spill starts moves back to the partial list, so refills never walk the full list;
// then, with `left` (active_local after the free) 0, region_check_empty.
void free_list_started(Context* ctx, Region* r, uint32_t left) noexcept;
// A free by a context that does not own the region (or of an ownerless region).
void free_remote(Region* r, void* p, uintptr_t off, const char* call) noexcept;
// The exiting owner of `r` closed its remote list, which was not empty: waits until `r`
// is on ctx's region queue (its pusher may be under way) and takes it off. Orphan lock held.
void region_queue_leave(Context* ctx, Region* r) noexcept;

// Contexts.
Context* context_create(ContextKind kind) noexcept;
// Flushes caches, releases empty regions, abandons the rest; then frees the context.
void context_exit(Context* ctx) noexcept;
// The calling OS thread's context, created on first use (nullptr if out of memory).
Context* context_current() noexcept;
// Collection point: takes every remote free back and releases regions that are empty.
void context_collect(Context* ctx) noexcept;
// malloc_trim: collect, then give back every page of ctx's warm regions.
void context_trim(Context* ctx) noexcept;
// Purge point: gives back the pages of ctx's warm regions whose delay has passed (all of
// them with `force`). Reads the clock only when a region waits.
void context_purge(Context* ctx, bool force) noexcept;
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

// Makes ctx->slots[slot].cur / cur_slab a slab with a block to give (refill: collects,
// adopts, takes from the pool or maps). False when out of memory.
bool context_ensure_slab(Context* ctx, unsigned slot) noexcept;

// --- orphans (orphans.cc): ownerless regions, under one lock ---
// A region with free space from the abandoned list (adopted) or the warm pool, now owned
// by ctx; nullptr if none.
Region* orphan_take(unsigned slot, Context* ctx) noexcept;
// The exiting owner gives up `r`: released if empty, else abandoned.
void orphan_abandon(Region* r) noexcept;
// A free into an abandoned region. False if the region was adopted meanwhile (retry).
bool free_abandoned(Region* r, void* p, uintptr_t off, const char* call) noexcept;
SpinLock& orphan_lock() noexcept;
// Purge point of the pool: pooled regions whose delay has passed at `now` (all of them
// with `force`) give their pages back. Takes the lock only when one is due.
void orphan_purge(uint64_t now, bool force) noexcept;
// Releases pool regions beyond the configured reserve (after a config change).
void orphan_trim_pool() noexcept;

// ---------------------------------------------------------------------------------------
HAK_INLINE void* box_pop(Context* ctx, Box& box) {
  FreeBlock* b = box.free;
  box.free = link_next(b);
  Region* r = box.seg;
  HAK_MEM_ALLOCATED(b, r->usable());
  region_mark_live(r, reinterpret_cast<uintptr_t>(b) - r->base());
  uint32_t a = r->active_local.load(std::memory_order_relaxed);
  r->active_local.store(a + 1, std::memory_order_relaxed);
  if (HAK_UNLIKELY(a == 0)) return region_left_empty(ctx, r, b);
  return b;
}

}  // namespace hak
