// Ownerless SuperSlabs: the warm pool (empty, pages given back after the purge delay, at
// most HAKMEM_WARM_REGIONS per class) and the abandoned lists (live blocks, owner exited).
// Everything here runs under one lock; it is off every fast path.
#include <atomic>

#include "config/config.h"
#include "os/os.h"
#include "thread/thread_cache.h"

namespace hak {
namespace {

SpinLock g_lock;
SuperSlab* g_pool[kNumSlots];
uint32_t g_pool_count[kNumSlots];
SuperSlab* g_abandoned[kNumSlots];
// The earliest time a pooled region with pages still committed is due to give them back
// (UINT64_MAX: none). Read without the lock by every purge point: a hint (the pool itself
// is read under the lock), so a plain std::atomic, outside the modelled protocol.
std::atomic<uint64_t> g_pool_purge_at{UINT64_MAX};

// Lock held; ss is ownerless, empty and on no list.
void release_empty_locked(SuperSlab* ss) {
  unsigned c = ss->slot;
  if (g_pool_count[c] < g_config.warm_regions) {
    // The pages go back after the purge delay (a thread that starts soon adopts the region
    // with its pages: thread churn faulted them all in again), at once when it is 0.
    if (g_config.purge_delay_ms == 0) {
      superslab_reset(ss, true);
    } else {
      ss->purge_at_ms = os_now_ms() + g_config.purge_delay_ms;
      if (ss->purge_at_ms < g_pool_purge_at.load(std::memory_order_relaxed))
        g_pool_purge_at.store(ss->purge_at_ms, std::memory_order_relaxed);
    }
    ss->warm = 1;
    // Tagged so that a stray free takes the locked path (where it is rejected).
    ss->remote_head.store(kAbandonedTag, std::memory_order_relaxed);
    superslab_list_push(g_pool[c], ss, SuperSlabList::kPool);
    ++g_pool_count[c];
    return;
  }
  superslab_unmap(ss);
}

}  // namespace

SpinLock& orphan_lock() noexcept {
  return g_lock;
}

SuperSlab* orphan_take(unsigned c, ThreadCache* tc) noexcept {
  SpinGuard g(g_lock);
  SuperSlab* ss = nullptr;
  for (SuperSlab* a = g_abandoned[c]; a; a = a->next) {
    if (a->has_free_space()) {
      ss = a;
      superslab_list_unlink(g_abandoned[c], a);
      break;
    }
  }
  if (!ss && g_pool[c]) {
    ss = g_pool[c];
    superslab_list_unlink(g_pool[c], ss);
    --g_pool_count[c];
    ss->warm = 0;
  }
  if (!ss) return nullptr;
  ss->owner.store(tc, std::memory_order_relaxed);
  // release: a remote free that sees the tag gone pushes to the new owner's list.
  ss->remote_head.store(0, std::memory_order_release);
  return ss;
}

void orphan_abandon(SuperSlab* ss) noexcept {
  SpinGuard g(g_lock);
  // acq_rel: takes the pending list (acquire) and closes it to pushers (tag).
  uintptr_t list = ss->remote_head.exchange(kAbandonedTag, std::memory_order_acq_rel);
  // Not empty: the region is on its owner's queue, or the free that found the list empty
  // is about to push it there; it leaves the queue before the owner goes.
  if (list) region_queue_leave(ss->owner.load(std::memory_order_relaxed), ss);
  superslab_collect(ss, list);
  ss->owner.store(nullptr, std::memory_order_relaxed);
  if (ss->active_local.load(std::memory_order_relaxed) == 0) return release_empty_locked(ss);
  superslab_list_push(g_abandoned[ss->slot], ss, SuperSlabList::kAbandoned);
}

bool superslab_free_abandoned(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept {
  SpinGuard g(g_lock);
  if (!(ss->remote_head.load(std::memory_order_relaxed) & kAbandonedTag)) return false;  // adopted
  Atomic<uint8_t>& st = superslab_state(ss, off);
  if (st.load(std::memory_order_relaxed) != kLive) {
    report_error(call, p, superslab_state_reason(ss, off, "double free (block is not allocated)"));
    return true;
  }
  st.store(kFree, std::memory_order_relaxed);
  HAK_MEM_FREED(p, ss->block_size);
  superslab_put(ss, p);
  uint32_t left = ss->active_local.load(std::memory_order_relaxed) - 1;
  ss->active_local.store(left, std::memory_order_relaxed);
  if (left == 0) {
    superslab_list_unlink(g_abandoned[ss->slot], ss);
    release_empty_locked(ss);
  }
  return true;
}

void orphan_purge(uint64_t now, bool force) noexcept {
  // relaxed: a hint; the pool itself is read under the lock.
  if (!force && now < g_pool_purge_at.load(std::memory_order_relaxed)) return;
  SpinGuard g(g_lock);
  uint64_t next = UINT64_MAX;
  for (unsigned c = 0; c < kNumSlots; ++c) {
    for (SuperSlab* ss = g_pool[c]; ss; ss = ss->next) {
      if (!ss->slab_carved_mask) continue;  // given back already
      if (force || ss->purge_at_ms <= now)
        superslab_reset(ss, true);  // no cache holds its blocks: the exit flushed them
      else if (ss->purge_at_ms < next)
        next = ss->purge_at_ms;
    }
  }
  g_pool_purge_at.store(next, std::memory_order_relaxed);
}

void orphan_trim_pool() noexcept {
  SpinGuard g(g_lock);
  for (unsigned c = 0; c < kNumSlots; ++c) {
    while (g_pool_count[c] > g_config.warm_regions) {
      SuperSlab* ss = g_pool[c];
      superslab_list_unlink(g_pool[c], ss);
      --g_pool_count[c];
      superslab_unmap(ss, false);
    }
  }
}

}  // namespace hak
