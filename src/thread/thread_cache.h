// ThreadCache: the per-thread context. Per class: a magazine (bounded stack of free
// blocks of regions this context owns), the current region and slab it refills from, its
// owned regions (partial / full lists) and its count of warm (empty, kept) regions.
// One OS thread normally has one; inspect may run several in one OS thread.
#pragma once

#include <cstdint>

#include "common/base.h"
#include "tiny/size_class.h"
#include "tiny/superslab.h"
#include "ultra/ultra.h"

namespace hak {

inline constexpr uint32_t kMagazineMax = 128;

// Magazine bookkeeping, apart from the arrays so the hot fields of every slot share a few
// cache lines.
struct Magazine {
  uint32_t count = 0;
  uint32_t cap = 0;  // 0 in the sentinel context: every pop misses
};

struct ClassCache {
  SuperSlab* cur = nullptr;
  uint32_t cur_slab = 0;
  uint32_t warm_count = 0;
  SuperSlab* partial = nullptr;  // owned, with free or uncarved blocks
  SuperSlab* full = nullptr;     // owned, neither
};

enum class ContextKind : uint8_t { kSentinel, kOsThread, kSimulated };

struct ThreadCache {
  UltraBox ultra;           // first: the ULTRA fast path touches only this and the segment
  Magazine mag[kNumSlots];  // kUltraSlot's is unused (cap 0)
  void* items[kNumSlots][kMagazineMax];
  ClassCache cls[kNumSlots];  // per class, and kUltraSlot
  ContextKind kind = ContextKind::kSentinel;
  ThreadCache* reg_next = nullptr;  // registry of contexts (cold)
  ThreadCache* reg_prev = nullptr;
  uint64_t id = 0;
};

// The calling thread's context; the sentinel until its first allocation.
extern constinit thread_local ThreadCache* tl_tc __attribute__((tls_model("initial-exec")));
extern ThreadCache g_sentinel_tc;

// Hands out the block on top of the magazine (count > 0): it becomes live.
HAK_INLINE void* magazine_pop(ThreadCache* tc, unsigned slot);

// --- cold paths (thread_cache.cc) ---
void thread_init_once() noexcept;
// Refills class `cls` and returns a live block, or nullptr (errno = ENOMEM).
void* malloc_class_slow(unsigned cls) noexcept;
// The magazine is full: returns its older half to the slabs, then pushes p and finishes
// the free (the rest of free_fast's work, out of line).
void magazine_flush_push(ThreadCache* tc, SuperSlab* ss, void* p) noexcept;
// First live block of a region whose count was zero (it leaves the warm reserve);
// returns p.
void* superslab_left_empty(ThreadCache* tc, SuperSlab* ss, void* p) noexcept;
// After a local free found active_local == remote_pending: collect, then release or keep.
void superslab_check_empty(ThreadCache* tc, SuperSlab* ss) noexcept;
// A free by a context that does not own the region (or of an ownerless region).
void superslab_free_remote(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;

// Contexts.
ThreadCache* thread_cache_create(ContextKind kind) noexcept;
// Flushes caches, releases empty regions, abandons the rest; then frees the context.
void thread_cache_exit(ThreadCache* tc) noexcept;
// The calling OS thread's context, created on first use (nullptr if out of memory).
ThreadCache* thread_cache_current() noexcept;
// Collection point: takes every remote free back and releases regions that are empty.
void thread_cache_collect(ThreadCache* tc) noexcept;
// Calls fn(tc) for every live context, under the context registry lock.
template <class Fn>
void thread_cache_for_each(Fn&& fn);
SpinLock& thread_cache_registry_lock() noexcept;
ThreadCache* thread_cache_registry_head() noexcept;

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
// An empty region leaves its context: into the warm pool if there is room, else unmapped.
void orphan_release_empty(SuperSlab* ss) noexcept;
// A free into an abandoned region. False if the region was adopted meanwhile (retry).
bool superslab_free_abandoned(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept;
SpinLock& orphan_lock() noexcept;
struct OrphanCounts {
  uint32_t pool[kNumSlots];
  uint32_t abandoned[kNumSlots];
};
OrphanCounts orphan_counts() noexcept;
// Releases pool regions beyond the configured reserve (after a config change).
void orphan_trim_pool() noexcept;

// ---------------------------------------------------------------------------------------
HAK_INLINE void* magazine_pop(ThreadCache* tc, unsigned slot) {
  uint32_t n = --tc->mag[slot].count;
  void* p = tc->items[slot][n];
  SuperSlab* ss = superslab_of(p);
  HAK_MEM_ALLOCATED(p, ss->block_size);
  superslab_mark_alloc(ss, reinterpret_cast<uintptr_t>(p) - ss->base());
  uint32_t a = ss->active_local.load(std::memory_order_relaxed);
  ss->active_local.store(a + 1, std::memory_order_relaxed);
  if (HAK_UNLIKELY(a == 0)) return superslab_left_empty(tc, ss, p);
  return p;
}

// Hands out the box's next block (box.free != nullptr): it becomes live.
HAK_INLINE void* ultra_pop(ThreadCache* tc) {
  UltraBox& box = tc->ultra;
  FreeBlock* b = box.free;
  box.free = link_next(b);
  SuperSlab* seg = box.seg;
  HAK_MEM_ALLOCATED(b, kTinyMax);
  ++seg->slabs[(reinterpret_cast<uintptr_t>(b) - seg->base()) >> kSlabShift].used;
  if constexpr (kHardened) superslab_mark_alloc(seg, reinterpret_cast<uintptr_t>(b) - seg->base());
  uint32_t a = seg->active_local.load(std::memory_order_relaxed);
  seg->active_local.store(a + 1, std::memory_order_relaxed);
  if (HAK_UNLIKELY(a == 0)) return superslab_left_empty(tc, seg, b);
  return b;
}

}  // namespace hak
