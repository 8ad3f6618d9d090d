// Remote frees (model/SPEC.md section 3, free by a context that does not own the region):
// the free itself (one step from live to freed, then a push on the region's remote list),
// the region queue that tells the owner which regions have such frees, and the owner's
// collection of them (each collected region then goes through the empty rule).
#include "region/remote.h"

#include "config/config.h"
#include "region/lifecycle.h"
#include "thread/context.h"

namespace hak {
namespace {

// The region queue of a slot (SlotState::remote_regions). The remote free whose push
// finds a region's remote list empty pushes the region on its owner's queue, after its
// block (free_remote). So an owned region is on the queue, or its push is under
// way, exactly while its remote list is not empty, and a collection visits those regions
// only, however many the slot has. Until the owner takes a region off the queue it cannot
// collect its list (the exit waits for the push: region_queue_leave), and a region whose
// list is not empty has a pending free and a live block: it stays mapped while its pusher
// still touches it. The owner takes the whole queue at once (no ABA: nobody else pops).

// acquire: the pushers' links (and their blocks' bits, through the lists' own releases).
Region* queue_take(SlotState& sl) {
  return sl.remote_regions.exchange(nullptr, std::memory_order_acquire);
}

// Pushes the chain first..last (linked through queue_next).
void queue_push(SlotState& sl, Region* first, Region* last) {
  Region* top = sl.remote_regions.load(std::memory_order_relaxed);
  do {
    last->queue_next.store(top, std::memory_order_relaxed);
    // release: the owner's queue_take sees the link.
  } while (!sl.remote_regions.compare_exchange_weak(top, first, std::memory_order_release,
                                                    std::memory_order_relaxed));
}

// After the block's push that found the list empty. The owner is the context that wrote
// that empty list (the CAS's acquire): it stays the owner until its exit, which waits for
// this push (region_queue_leave).
void region_queue_push(Region* r) {
  Context* ctx = r->owner.load(std::memory_order_relaxed);
  queue_push(ctx->slots[r->slot], r, r);
}

// A region the owner took off its queue: its remote frees come back, then the empty
// rule if it is empty. acq_rel: acquire orders the blocks; release, because the next free
// finds the list empty and writes queue_next, which the caller read before.
void collect_queued(Context* ctx, Region* r, Pages pages) {
  uintptr_t list = r->remote_head.exchange(0, std::memory_order_acq_rel);
  region_collect(r, list);
  relist(ctx->slots[r->slot], r);
  if (r->active_local.load() == 0 && !r->warm) region_became_empty(ctx, r, pages, false);
}

}  // namespace

void free_remote(Region* r, void* p, uintptr_t off, const char* call) noexcept {
  Atomic<uint8_t>& st = region_state(r, off);
  for (;;) {
    // One step from live to freed: a second free of the block, here or by the owner, sees
    // kRemote until the owner's collection makes it kFree. relaxed: the block's state is
    // one location (its own entry), and the push below publishes the link.
    uint8_t seen = kLive;
    if (!st.compare_exchange_strong(seen, kRemote, std::memory_order_relaxed,
                                    std::memory_order_relaxed)) {
      if (seen == kRemote)
        return report_error(call, p, "double free (block already freed by another thread)");
      return report_error(call, p,
                          region_state_reason(r, off, "double free (block is not allocated)"));
    }
    // No count here: active_local still counts the block (the owner's count, only its
    // collection takes it off), so the owner cannot find the region empty, nor release
    // it, while the block is on its way.
    HAK_MEM_FREED(p, r->block_size);  // before the push: once pushed the owner may reuse it
    uintptr_t head = r->remote_head.load(std::memory_order_relaxed);
    while (!(head & kAbandonedTag)) {
      link_set(static_cast<FreeBlock*>(p), reinterpret_cast<FreeBlock*>(head));
      // release: the owner's acquire exchange sees the link written above. acquire: when
      // the list was empty, the 0 read was written by the owner's collection or adoption,
      // after it set the owner that region_queue_push reads.
      if (r->remote_head.compare_exchange_weak(head, reinterpret_cast<uintptr_t>(p),
                                               std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
        // This free found the list empty: it queues the region with its owner, whose next
        // collection of the slot then visits it.
        if (head == 0) region_queue_push(r);
        return;
      }
    }
    // Abandoned: undone (the block is live again to the lock holder), then freed as its
    // owner would, under the orphan lock.
    HAK_MEM_ALLOCATED(p, r->usable());
    st.store(kLive, std::memory_order_relaxed);
    if (free_abandoned(r, p, off, call)) return;
  }
}

void region_queue_leave(Context* ctx, Region* r) noexcept {
  SlotState& sl = ctx->slots[r->slot];
  // Each take marks every region it finds; each of them is abandoned in turn (their lists
  // are not empty) and clears its mark here: one pass over the queue per exit.
  for (unsigned spins = 0; !r->dequeued; ++spins) {
    for (Region* q = queue_take(sl); q;) {
      Region* next = q->queue_next.load(std::memory_order_relaxed);
      q->dequeued = 1;
      q = next;
    }
    if (!r->dequeued) wait_pause(spins);
  }
  r->dequeued = 0;
}

// A collection point of slot c: the regions on its queue, the only ones with remote frees
// to collect (no other owned region is empty and not warm: the free that empties one
// applies the empty rule). Returns the number of regions visited.
uint64_t collect_slot(Context* ctx, unsigned c, Pages pages) noexcept {
  SlotState& sl = ctx->slots[c];
  // No owned region, none queued: no atomic operation for the slots a context does not use
  // (hak_collect runs every slot).
  if (!sl.partial && !sl.full) return 0;
  uint64_t visits = 0;
  for (Region* r = queue_take(sl); r; ++visits) {
    // Read first: once its list is taken, a free may push the region again.
    Region* next = r->queue_next.load(std::memory_order_relaxed);
    collect_queued(ctx, r, pages);
    r = next;
  }
  return visits;
}

void region_queues_rebuild(Context* t) noexcept {
  for (unsigned c = 0; c < kNumSlots; ++c) {
    SlotState& sl = t->slots[c];
    sl.remote_regions.store(nullptr, std::memory_order_relaxed);
    for (RegionList l : {RegionList::kFull, RegionList::kPartial}) {
      for (Region* r = slot_list(sl, l); r; r = r->next) {
        r->dequeued = 0;
        if (r->remote_head.load(std::memory_order_relaxed) != 0) queue_push(sl, r, r);
      }
    }
  }
}

}  // namespace hak
