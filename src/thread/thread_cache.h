// ThreadCache: the per-thread context. Per slot (size class, or the ULTRA slot): a box (the
// free list of the region it hands blocks out of), the current region and slab it refills
// from, its owned regions (partial / full lists) and its count of warm (empty, kept)
// regions. One OS thread normally has one; inspect may run several in one OS thread.
#pragma once

#include <cstdint>

#include "common/base.h"
#include "tiny/size_class.h"
#include "tiny/superslab.h"

namespace hak {

// The thread's cache of one slot: free blocks of one owned region (`seg`), any slab, in
// a LIFO list (the block reused next is the one just freed, still in cache). malloc pops
// it; a free into `seg` pushes on it, a free into another owned region pushes on that
// region's spill (both through the region's local_head: superslab.h), which a refill
// takes whole into the box when it picks the region. Every slot works the same way, so
// the fast paths have no branch on the class (the seed's ULTRA box, for every class).
struct Box {
  FreeBlock* free = nullptr;  // nullptr in the sentinel context: every pop misses
  SuperSlab* seg = nullptr;
};

// Blocks carved into a box at once from a fresh slab (the rest stay uncarved).
inline constexpr uint32_t kCarveBatch = 64;

struct ClassCache {
  SuperSlab* cur = nullptr;
  uint32_t cur_slab = 0;
  uint32_t warm_count = 0;
  SuperSlab* partial = nullptr;  // owned, with free or uncarved blocks
  SuperSlab* full = nullptr;     // owned, neither
  // The region queue: the owned regions whose remote list is not empty, pushed by the
  // remote free that found the list empty (a lock-free stack through queue_next), taken
  // whole by the owner's collection (thread_cache.cc).
  Atomic<SuperSlab*> remote_regions{nullptr};
};

enum class ContextKind : uint8_t { kSentinel, kOsThread, kSimulated };

struct ThreadCache {
  Box box[kNumSlots];         // first: the fast paths touch only this and the region
  ClassCache cls[kNumSlots];  // per class, and kUltraSlot
  // Warm regions whose pages go back once their purge is due, oldest first (the delay is
  // one for all, so that is also the order of their due times).
  SuperSlab* purge_head = nullptr;
  SuperSlab* purge_tail = nullptr;
  // The next refill at or after this time collects every slot (remote frees strand no
  // region of a slot the thread stopped allocating from).
  uint64_t collect_at_ms = 0;
  ContextKind kind = ContextKind::kSentinel;
  ThreadCache* reg_next = nullptr;  // registry of contexts (cold)
  ThreadCache* reg_prev = nullptr;
  uint64_t id = 0;
  // Refill collections and the regions they visited, for inspect. Written by the owner
  // alone (relaxed load and store: no locked instruction), read by inspect.
  std::atomic<uint64_t> refill_collections{0};
  std::atomic<uint64_t> refill_region_visits{0};
};

// The calling thread's context; the sentinel until its first allocation.
extern constinit thread_local ThreadCache* tl_tc __attribute__((tls_model("initial-exec")));
extern ThreadCache g_sentinel_tc;

// Hands out the box's first block (box.free != nullptr): it becomes live.
HAK_INLINE void* box_pop(ThreadCache* tc, Box& box);

// --- cold paths (thread_cache.cc) ---
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
// its partial first and last pages (src/tiny/superslab.h), so only those are cleared and
// pages calloc would fault in for nothing stay untouched. nullptr: errno = ENOMEM.
void* calloc_mid(unsigned slot, size_t bytes) noexcept;
// Gives the box's blocks back to their slabs (thread exit).
void box_flush(Box& box) noexcept;
// Gives the spill's blocks back to their slabs (thread exit: the region loses its owner).
void spill_flush(SuperSlab* ss) noexcept;
// First live block of a region whose count was zero (it leaves the warm reserve);
// returns p.
void* superslab_left_empty(ThreadCache* tc, SuperSlab* ss, void* p) noexcept;
// After a local free found active_local == 0: the region is empty (release or keep).
void superslab_check_empty(ThreadCache* tc, SuperSlab* ss) noexcept;
// A local free found its list (the box, or ss's spill) empty: a region on the full list
// whose spill starts moves back to the partial list, so refills never walk the full list;
// then, with `left` (active_local after the free) 0, superslab_check_empty.
void free_list_started(ThreadCache* tc, SuperSlab* ss, uint32_t left) noexcept;
// A free by a context that does not own the region (or of an ownerless region).
void superslab_free_remote(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;
// The exiting owner of `ss` closed its remote list, which was not empty: waits until `ss`
// is on tc's region queue (its pusher may be under way) and takes it off. Orphan lock held.
void region_queue_leave(ThreadCache* tc, SuperSlab* ss) noexcept;

// Contexts.
ThreadCache* thread_cache_create(ContextKind kind) noexcept;
// Flushes caches, releases empty regions, abandons the rest; then frees the context.
void thread_cache_exit(ThreadCache* tc) noexcept;
// The calling OS thread's context, created on first use (nullptr if out of memory).
ThreadCache* thread_cache_current() noexcept;
// Collection point: takes every remote free back and releases regions that are empty.
void thread_cache_collect(ThreadCache* tc) noexcept;
// malloc_trim: collect, then give back every page of tc's warm regions.
void thread_cache_trim(ThreadCache* tc) noexcept;
// Purge point: gives back the pages of tc's warm regions whose delay has passed (all of
// them with `force`). Reads the clock only when a region waits.
void thread_cache_purge(ThreadCache* tc, bool force) noexcept;
// How often a refill also collects the thread's other slots: the purge delay, at least
// 10 ms (a full collection visits every owned region).
inline constexpr uint32_t kCollectEveryMinMs = 10;
// Calls fn(tc) for every live context, under the context registry lock.
template <class Fn>
void thread_cache_for_each(Fn&& fn);
SpinLock& thread_cache_registry_lock() noexcept;
ThreadCache* thread_cache_registry_head() noexcept;
// Refill collections so far and the regions they visited, over every context (inspect).
struct RefillCounts {
  uint64_t collections = 0, region_visits = 0;
};
RefillCounts thread_cache_refill_counts() noexcept;

template <class Fn>
void thread_cache_for_each(Fn&& fn) {
  SpinGuard g(thread_cache_registry_lock());
  for (ThreadCache* t = thread_cache_registry_head(); t; t = t->reg_next) fn(t);
}

// Makes tc->cls[slot].cur / cur_slab a slab with a block to give (refill: collects,
// adopts, takes from the pool or maps). False when out of memory.
bool thread_cache_ensure_slab(ThreadCache* tc, unsigned slot) noexcept;

// --- orphans (orphans.cc): ownerless regions, under one lock ---
// A region with free space from the abandoned list (adopted) or the warm pool, now owned
// by tc; nullptr if none.
SuperSlab* orphan_take(unsigned slot, ThreadCache* tc) noexcept;
// The exiting owner gives up `ss`: released if empty, else abandoned.
void orphan_abandon(SuperSlab* ss) noexcept;
// A free into an abandoned region. False if the region was adopted meanwhile (retry).
bool superslab_free_abandoned(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;
SpinLock& orphan_lock() noexcept;
// Purge point of the pool: pooled regions whose delay has passed at `now` (all of them
// with `force`) give their pages back. Takes the lock only when one is due.
void orphan_purge(uint64_t now, bool force) noexcept;
// Releases pool regions beyond the configured reserve (after a config change).
void orphan_trim_pool() noexcept;

// ---------------------------------------------------------------------------------------
HAK_INLINE void* box_pop(ThreadCache* tc, Box& box) {
  FreeBlock* b = box.free;
  box.free = link_next(b);
  SuperSlab* ss = box.seg;
  HAK_MEM_ALLOCATED(b, ss->usable());
  superslab_mark_live(ss, reinterpret_cast<uintptr_t>(b) - ss->base());
  uint32_t a = ss->active_local.load(std::memory_order_relaxed);
  ss->active_local.store(a + 1, std::memory_order_relaxed);
  if (HAK_UNLIKELY(a == 0)) return superslab_left_empty(tc, ss, b);
  return b;
}

}  // namespace hak
