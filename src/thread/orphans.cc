// Ownerless SuperSlabs: the warm pool (empty, pages given back after the purge delay, at
// most HAKMEM_WARM_REGIONS per class) and the abandoned lists (live blocks, owner exited).
// Everything here runs under one lock; it is off every fast path.
#include <atomic>

#include "config/config.h"
#include "os/os.h"
#include "thread/context.h"

namespace hak {
namespace {

SpinLock g_lock;
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
  return g_lock;
}

Region* orphan_take(unsigned c, Context* ctx) noexcept {
  SpinGuard g(g_lock);
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
  SpinGuard g(g_lock);
  // acq_rel: takes the pending list (acquire) and closes it to pushers (tag).
  uintptr_t list = r->remote_head.exchange(kAbandonedTag, std::memory_order_acq_rel);
  // Not empty: the region is on its owner's queue, or the free that found the list empty
  // is about to push it there; it leaves the queue before the owner goes.
  if (list) region_queue_leave(r->owner.load(std::memory_order_relaxed), r);
  region_collect(r, list);
  r->owner.store(nullptr, std::memory_order_relaxed);
  if (r->active_local.load(std::memory_order_relaxed) == 0) return release_empty_locked(r);
  region_list_push(g_abandoned[r->slot], r, RegionList::kAbandoned);
}

bool free_abandoned(Region* r, void* p, uintptr_t off, const char* call) noexcept {
  SpinGuard g(g_lock);
  if (!(r->remote_head.load(std::memory_order_relaxed) & kAbandonedTag)) return false;  // adopted
  Atomic<uint8_t>& st = region_state(r, off);
  if (st.load(std::memory_order_relaxed) != kLive) {
    report_error(call, p, region_state_reason(r, off, "double free (block is not allocated)"));
    return true;
  }
  st.store(kFree, std::memory_order_relaxed);
  HAK_MEM_FREED(p, r->block_size);
  region_put(r, p);
  uint32_t left = r->active_local.load(std::memory_order_relaxed) - 1;
  r->active_local.store(left, std::memory_order_relaxed);
  if (left == 0) {
    region_list_unlink(g_abandoned[r->slot], r);
    release_empty_locked(r);
  }
  return true;
}

void orphan_purge(uint64_t now, bool force) noexcept {
  // relaxed: a hint; the pool itself is read under the lock.
  if (!force && now < g_pool_purge_at.load(std::memory_order_relaxed)) return;
  SpinGuard g(g_lock);
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
  SpinGuard g(g_lock);
  for (unsigned c = 0; c < kNumSlots; ++c) {
    while (g_pool_count[c] > g_config.warm_regions) {
      Region* r = g_pool[c];
      region_list_unlink(g_pool[c], r);
      --g_pool_count[c];
      region_release(r, false);
    }
  }
}

}  // namespace hak
