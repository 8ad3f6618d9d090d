// The region lifecycle of model/SPEC.md section 4, in its order: what every release and
// every give-back does first (the caches lose the region's blocks), the purge rule (the
// pages of a warm region go back after the delay), the empty rule (an owned region that
// empties is kept warm or released), the orphan rule (an ownerless region that empties is
// pooled or released; abandon and adopt) and the collection points that apply them.
// Nothing here is on a fast path: free_fast calls in when a list starts or a count hits 0.
#include "region/lifecycle.h"

#include <atomic>

#include "config/config.h"
#include "os/os.h"
#include "region/remote.h"
#include "thread/context.h"

namespace hak {
namespace {

// --- Before a release or a give-back: no cache keeps the region's blocks ---

// Drops cached free blocks of `r` (all of them, or all but those of slab `keep`): they
// are about to be reset or unmapped. One walk of the spill and of the box; the spill's
// blocks of `keep` go back on its slab's list (region_reset_except keeps it).
void purge_caches(Context* ctx, Region* r, int keep) {
  FreeBlock* spill = r->spill;
  r->spill = nullptr;
  if (keep >= 0) {
    for (FreeBlock* b = spill; b;) {
      FreeBlock* next = link_next(b);
      if (((reinterpret_cast<uintptr_t>(b) - r->base()) >> kSlabShift) ==
          static_cast<uintptr_t>(keep))
        region_put(r, b);
      b = next;
    }
  }
  if (ctx->slots[r->slot].box_region != r) return;
  if (keep < 0) {
    box_clear(ctx, r->slot);
    return;
  }
  Box& box = ctx->box[r->slot];
  FreeBlock* kept = nullptr;
  for (FreeBlock* b = box.free; b;) {
    FreeBlock* next = link_next(b);
    if (((reinterpret_cast<uintptr_t>(b) - r->base()) >> kSlabShift) ==
        static_cast<uintptr_t>(keep)) {
      link_set(b, kept);
      kept = b;
    }
    b = next;
  }
  box.free = kept;
}

// --- The purge rule: a warm region's pages go back once it stayed warm for the delay ---

// The purge list (Context::purge_head): regions whose pages wait for the delay since
// they became warm. A region that left the warm state stays listed (unlisting it there
// would cost the malloc that takes its first block): the purge skips it, and it is
// unlisted before it is released.
void purge_unlist(Context* ctx, Region* r) {
  if (!r->purge_listed) return;
  (r->purge_prev ? r->purge_prev->purge_next : ctx->purge_head) = r->purge_next;
  (r->purge_next ? r->purge_next->purge_prev : ctx->purge_tail) = r->purge_prev;
  r->purge_next = r->purge_prev = nullptr;
  r->purge_listed = false;
}
void purge_list(Context* ctx, Region* r) {
  purge_unlist(ctx, r);  // a later due time: to the tail
  r->purge_at_ms = os_now_ms() + g_config.purge_delay_ms;
  r->purge_prev = ctx->purge_tail;
  r->purge_next = nullptr;
  (ctx->purge_tail ? ctx->purge_tail->purge_next : ctx->purge_head) = r;
  ctx->purge_tail = r;
  r->purge_listed = true;
}

// Gives back the pages of the warm region r, except those of the slab ctx carves from
// (so a malloc/free ping-pong costs no system call); its cached blocks go first.
void give_back_pages(Context* ctx, Region* r) {
  SlotState& sl = ctx->slots[r->slot];
  purge_unlist(ctx, r);
  if (r == sl.box_region) {
    purge_caches(ctx, r, static_cast<int>(sl.box_slab));
    region_reset_except(r, sl.box_slab);
  } else {
    purge_caches(ctx, r, -1);
    region_reset(r, true);
  }
  relist(sl, r);
}

}  // namespace

void context_purge(Context* ctx, bool force) noexcept {
  if (!ctx->purge_head) return;
  uint64_t now = force ? 0 : os_now_ms();
  while (Region* r = ctx->purge_head) {
    if (!r->warm) {  // in use again since it was listed: its pages are wanted
      purge_unlist(ctx, r);
      continue;
    }
    if (!force && r->purge_at_ms > now) return;
    give_back_pages(ctx, r);
  }
}

// --- The empty rule: an owned region with no live block and no pending free ---

// The owner's region has no live block and no pending remote free. keep_pages: when
// released, its pages wait in the large-run cache for the purge delay (the owner emptied
// it with its own frees: it allocates the size, a new region is near). A collection gives
// them back at once: a thread that no longer allocates the size may make no purge point for
// long (bench stranded kept 100 MB), and a producer whose blocks other threads free took
// the dirty pages into regions that carved a few blocks before emptying again (bench
// prodcons: peak RSS 7.7 -> 16-19 MB).
// Out of line: region_check_empty tail-calls it and keeps its short path frameless.
HAK_NOINLINE void region_became_empty(Context* ctx, Region* r, Pages pages,
                                      bool keep_pages) noexcept {
  SlotState& sl = ctx->slots[r->slot];
  if (r->warm) return;
  if (sl.warm_count < g_config.warm_regions) {
    // Kept: it stays mapped in this context, and its pages go back after the purge delay
    // (a program that empties and refills a region in a loop faulted them in again at
    // once). A refill keeps them until its next purge point even when the delay is 0: a
    // producer whose blocks another thread frees finds its regions empty at every refill,
    // and giving the pages back there made it fault them in again at once (docs/DESIGN.md
    // section 10: hysteresis).
    ++sl.warm_count;
    r->warm = 1;
    if (pages == Pages::kGiveBack && g_config.purge_delay_ms == 0) return give_back_pages(ctx, r);
    purge_list(ctx, r);
    relist(sl, r);
    return;
  }
  purge_unlist(ctx, r);
  purge_caches(ctx, r, -1);  // the box leaves it, if it was the box's region
  slot_list_unlink(sl, r);
  region_release(r, keep_pages);
}

void* region_left_empty(Context* ctx, Region* r, void* p) noexcept {
  if (r->warm) {
    r->warm = 0;
    --ctx->slots[r->slot].warm_count;
  }
  return p;
}

void free_list_started(Context* ctx, Region* r) noexcept {
  // The box's list (r is its region): nothing to do. A spill: a full region has a free
  // block again, back to the partial list.
  if (r->local_head == &r->spill && r->list == RegionList::kFull) {
    SlotState& sl = ctx->slots[r->slot];
    slot_list_unlink(sl, r);
    slot_list_push(sl, r, RegionList::kPartial);
  }
  if (r->active_local.decrement_is_zero()) region_check_empty(ctx, r);
}

void region_check_empty(Context* ctx, Region* r) noexcept {
  // active_local == 0: no live block, and no remote free on its way either (active_local
  // counts those until they are collected), so nothing to collect here: the empty rule.
  // The common case, a malloc/free ping-pong on the box's region, in short: room in the
  // warm reserve, no other slab to decommit. The same steps region_became_empty takes
  // for it.
  SlotState& sl = ctx->slots[r->slot];
  // The box's region is the one whose frees push on the box (local_head, on the header
  // line free_fast read), which spares the load of the box.
  if (r->local_head != &r->spill && !r->warm && sl.warm_count < g_config.warm_regions &&
      (r->slab_carved_mask & ~(1u << sl.box_slab)) == 0) {
    // No relist: it is on the partial list already. Only its box slab is carved, so its
    // other slabs are uncarved (it has blocks to give), and the box's region leaves the
    // partial list only when exhausted, when every slab is carved (formal/spin asserts
    // it here).
    ++sl.warm_count;
    r->warm = 1;
    return;
  }
  region_became_empty(ctx, r, Pages::kGiveBack);
}

// --- The orphan rule: regions without owner, under one lock (the warm pool: empty, pages
// given back after the purge delay, at most HAKMEM_WARM_REGIONS per slot; the abandoned
// lists: live blocks, owner exited) ---

namespace {

SpinLock g_orphan_lock;
Region* g_pool[kNumSlots];
uint32_t g_pool_count[kNumSlots];
Region* g_abandoned[kNumSlots];
// The earliest time a pooled region with pages still committed is due to give them back
// (UINT64_MAX: none). Read without the lock by every purge point: a hint (the pool itself
// is read under the lock), so a plain std::atomic, outside the modelled protocol.
std::atomic<uint64_t> g_pool_purge_at{UINT64_MAX};

// Lock held; r is ownerless, empty and on no list.
void release_empty_locked(Region* r) {
  unsigned c = r->slot;
  if (g_pool_count[c] < g_config.warm_regions) {
    // The pages go back after the purge delay (a thread that starts soon adopts the region
    // with its pages: thread churn faulted them all in again), at once when it is 0.
    if (g_config.purge_delay_ms == 0) {
      region_reset(r, true);
    } else {
      r->purge_at_ms = os_now_ms() + g_config.purge_delay_ms;
      if (r->purge_at_ms < g_pool_purge_at.load(std::memory_order_relaxed))
        g_pool_purge_at.store(r->purge_at_ms, std::memory_order_relaxed);
    }
    r->warm = 1;
    // Tagged so that a stray free takes the locked path (where it is rejected).
    r->remote_head.store(kAbandonedTag, std::memory_order_relaxed);
    region_list_push(g_pool[c], r, RegionList::kPool);
    ++g_pool_count[c];
    return;
  }
  region_release(r);
}

}  // namespace

SpinLock& orphan_lock() noexcept {
  return g_orphan_lock;
}

Region* orphan_take(unsigned c, Context* ctx) noexcept {
  SpinGuard g(g_orphan_lock);
  Region* r = nullptr;
  for (Region* a = g_abandoned[c]; a; a = a->next) {
    if (a->has_free_space()) {
      r = a;
      region_list_unlink(g_abandoned[c], a);
      break;
    }
  }
  if (!r && g_pool[c]) {
    r = g_pool[c];
    region_list_unlink(g_pool[c], r);
    --g_pool_count[c];
    r->warm = 0;
  }
  if (!r) return nullptr;
  r->owner.store(ctx, std::memory_order_relaxed);
  // release: a remote free that sees the tag gone pushes to the new owner's list.
  r->remote_head.store(0, std::memory_order_release);
  return r;
}

void orphan_abandon(Region* r) noexcept {
  SpinGuard g(g_orphan_lock);
  // acq_rel: takes the pending list (acquire) and closes it to pushers (tag).
  uintptr_t list = r->remote_head.exchange(kAbandonedTag, std::memory_order_acq_rel);
  // Not empty: the region is on its owner's queue, or the free that found the list empty
  // is about to push it there; it leaves the queue before the owner goes.
  if (list) region_queue_leave(r->owner.load(std::memory_order_relaxed), r);
  region_collect(r, list);
  r->owner.store(nullptr, std::memory_order_relaxed);
  if (r->active_local.load() == 0) return release_empty_locked(r);
  region_list_push(g_abandoned[r->slot], r, RegionList::kAbandoned);
}

bool free_abandoned(Region* r, void* p, uintptr_t off, const char* call) noexcept {
  SpinGuard g(g_orphan_lock);
  if (!(r->remote_head.load(std::memory_order_relaxed) & kAbandonedTag)) return false;  // adopted
  Atomic<uint8_t>& st = region_state(r, off);
  if (st.load(std::memory_order_relaxed) != kLive) {
    report_error(call, p, region_state_reason(r, off, "double free (block is not allocated)"));
    return true;
  }
  st.store(kFree, std::memory_order_relaxed);
  HAK_MEM_FREED(p, r->block_size);
  region_put(r, p);
  if (r->active_local.decrement_is_zero()) {  // the lock holder is its one writer
    region_list_unlink(g_abandoned[r->slot], r);
    release_empty_locked(r);
  }
  return true;
}

void orphan_purge(uint64_t now, bool force) noexcept {
  // relaxed: a hint; the pool itself is read under the lock.
  if (!force && now < g_pool_purge_at.load(std::memory_order_relaxed)) return;
  SpinGuard g(g_orphan_lock);
  uint64_t next = UINT64_MAX;
  for (unsigned c = 0; c < kNumSlots; ++c) {
    for (Region* r = g_pool[c]; r; r = r->next) {
      if (!r->slab_carved_mask) continue;  // given back already
      if (force || r->purge_at_ms <= now)
        region_reset(r, true);  // no cache holds its blocks: the exit flushed them
      else if (r->purge_at_ms < next)
        next = r->purge_at_ms;
    }
  }
  g_pool_purge_at.store(next, std::memory_order_relaxed);
}

void orphan_trim_pool() noexcept {
  SpinGuard g(g_orphan_lock);
  for (unsigned c = 0; c < kNumSlots; ++c) {
    while (g_pool_count[c] > g_config.warm_regions) {
      Region* r = g_pool[c];
      region_list_unlink(g_pool[c], r);
      --g_pool_count[c];
      region_release(r, false);
    }
  }
}

// exit(ctx) for its regions: each leaves the warm state and goes to the orphan rule
// (released or pooled when empty, else abandoned); the boxes and spills give their blocks
// back to the slabs first.
void context_leave_regions(Context* ctx) noexcept {
  while (Region* r = ctx->purge_head) purge_unlist(ctx, r);  // pooled regions give all back
  for (unsigned c = 0; c < kNumSlots; ++c) {
    SlotState& sl = ctx->slots[c];
    box_flush(ctx, c);
    for (RegionList l : {RegionList::kPartial, RegionList::kFull}) {
      while (Region* r = slot_list(sl, l)) {
        slot_list_unlink(sl, r);
        spill_flush(r);
        if (r->warm) {
          r->warm = 0;
          --sl.warm_count;
        }
        orphan_abandon(r);
      }
    }
  }
}

// --- Collection points: every remote free comes back, then the rules above ---

void context_collect(Context* ctx) noexcept {
  for (unsigned c = 0; c < kNumSlots; ++c) collect_slot(ctx, c, Pages::kGiveBack);
  context_purge(ctx, true);  // hak_collect gives back at once, whatever the delay
  orphan_purge(0, true);
}

void context_trim(Context* ctx) noexcept {
  context_collect(ctx);
  for (unsigned c = 0; c < kNumSlots; ++c) {
    SlotState& sl = ctx->slots[c];
    for (Region* r = sl.partial; r; r = r->next) {
      // Nothing carved since its last reset: no page to give back (fuzz_api trims after
      // every input: about 37 warm regions were reset each time, their ASan shadow too).
      if (!r->warm || !r->slab_carved_mask) continue;
      // All its pages, the slab being carved from included (the empty rule keeps those).
      purge_unlist(ctx, r);
      purge_caches(ctx, r, -1);
      region_reset(r, true);
    }
  }
}

}  // namespace hak
