#include "thread/context.h"

#include <errno.h>
#include <pthread.h>

#include <cstring>
#include <new>

#include "config/config.h"
#include "large/large.h"
#include "os/os.h"
#include "region/remote.h"
#include "regionmap/registry.h"

namespace hak {

constinit thread_local Context* tl_context __attribute__((tls_model("initial-exec"))) = &g_sentinel;
Context g_sentinel;

namespace {

pthread_key_t g_key;
SpinLock g_registry_lock;
Context* g_registry = nullptr;
Context* g_recycled = nullptr;  // freed contexts, linked through reg_next
uint64_t g_next_id = 1;
RefillCounts g_exited_refills;  // of contexts that exited (registry lock)

// A context starts kContextOffset bytes into its mapping, so that its boxes (the lines the
// fast paths write) are at other offsets in a 4 KiB page than the region header's hot
// lines (offsets 64..319, region.h): a load whose address matches an earlier store's in
// bits 0..11 waits on it as if dependent (4K aliasing). bench_mixed --ws 4096 with 32-byte
// blocks, 1.11x; bench_stranded's 32-byte phase 1.10x.
constexpr size_t kContextOffset = 1024;
constexpr size_t kContextBytes = align_up(sizeof(Context) + kContextOffset, kPageSize);

// Owner only: a relaxed load and store, no locked instruction.
void add_relaxed(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Set once the thread's context has exited (its key destructor ran). Later allocations
// (other keys' destructors) may come in the last destructor round, after which glibc
// runs no destructor again: a context made then would own its regions forever. So each
// of them gets a context that exits right after the allocation.
constinit thread_local bool tl_exiting __attribute__((tls_model("initial-exec"))) = false;

void on_thread_exit(void* arg) {
  Context* ctx = static_cast<Context*>(arg);
  tl_context = &g_sentinel;  // anything allocated from here on gets a fresh context
  tl_exiting = true;
  context_exit(ctx);
}

// An allocation after the thread's context exited is done: its region is abandoned (or
// released when empty), as at any thread exit.
void* exit_late_context(Context* ctx, void* p) {
  tl_context = &g_sentinel;
  context_exit(ctx);
  return p;
}

void fork_prepare() {
  orphan_lock().lock();
  large_lock().lock();
  g_registry_lock.lock();
  registry_lock().lock();
}
void fork_parent() {
  registry_lock().unlock();
  g_registry_lock.unlock();
  large_lock().unlock();
  orphan_lock().unlock();
}
// A context of a thread that did not survive the fork (an OS thread's, not the caller's).
bool lost_in_fork(const Context* t) {
  return t && t != tl_context && t->kind == ContextKind::kOsThread;
}

// A class region whose owner was lost in the fork, or nullptr.
Region* region_of_lost_context() {
  Region* found = nullptr;
  registry_for_each([&](uintptr_t base) {
    RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
    if (found || !is_class_region(k)) return;  // class regions only
    Region* r = reinterpret_cast<Region*>(base);
    if (lost_in_fork(r->owner.load(std::memory_order_relaxed))) found = r;
  });
  return found;
}

// The list length of a remote list (tag bit aside).
uint32_t remote_list_length(uintptr_t head) {
  uint32_t n = 0;
  for (FreeBlock* b = reinterpret_cast<FreeBlock*>(head & ~kAbandonedTag); b; b = link_next(b)) ++n;
  return n;
}

// A lost thread may also have stopped inside a remote free into a region that survives
// (the forking thread's, or an abandoned one), after its block became kRemote and before
// pushing it: no collection would ever find the block, active_local would never drop and
// the region never be empty again. With no other thread left every pending free is on the
// list, so a region with more kRemote blocks than its list holds is rebuilt from its state
// map, which completes that free (a scan of the surviving regions' maps, in the child).
void repair_surviving_regions() {
  SpinGuard g(orphan_lock());
  registry_for_each([&](uintptr_t base) {
    RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
    if (!is_class_region(k)) return;  // class regions only
    Region* r = reinterpret_cast<Region*>(base);
    uintptr_t head = r->remote_head.load(std::memory_order_relaxed);
    if (region_remote_blocks(r) == remote_list_length(head)) return;
    Context* owner = r->owner.load(std::memory_order_relaxed);
    if (owner) {  // the forking thread's: its box may hold blocks the rebuild lists again
      if (owner->slots[r->slot].box_region == r) box_flush(owner, r->slot);
      region_rebuild(r);
      relist(owner->slots[r->slot], r);
    } else {  // abandoned: adopted (then collected) like any other once it has room
      region_rebuild(r);
      r->remote_head.store(head & kAbandonedTag, std::memory_order_relaxed);
    }
  });
}

void fork_child() {
  // The locks' holders are gone.
  registry_lock().reset_in_child();
  g_registry_lock.reset_in_child();
  large_lock().reset_in_child();
  orphan_lock().reset_in_child();
  // So are the other threads. Their regions are given up as at a thread exit
  // (abandoned, so this process adopts them and its frees release them; released when
  // empty): else every child of a prefork server kept them all, owned by nobody who
  // would ever collect. Such a thread may have stopped inside any owner operation, so
  // its context's lists and boxes are not trusted: each region is rebuilt from its
  // state maps, found through the region registry (consistent: its lock was held).
  while (Region* r = region_of_lost_context()) {
    {
      SpinGuard g(orphan_lock());
      region_rebuild(r);
    }
    r->warm = 0;
    r->purge_listed = false;  // on a lost context's purge list
    r->list = RegionList::kNone;
    orphan_abandon(r);
  }
  repair_surviving_regions();
  // Then the contexts themselves are recycled, their contents unread.
  SpinGuard g(g_registry_lock);
  for (Context* t = g_registry; t;) {
    Context* next = t->reg_next;
    if (!lost_in_fork(t)) region_queues_rebuild(t);
    if (lost_in_fork(t)) {
      if (t->reg_prev)
        t->reg_prev->reg_next = next;
      else
        g_registry = next;
      if (next) next->reg_prev = t->reg_prev;
      t->kind = ContextKind::kSentinel;
      t->reg_prev = nullptr;
      t->reg_next = g_recycled;
      g_recycled = t;
    }
    t = next;
  }
}

// The first region of the slot's partial list that `want` takes, preferring one in use over
// a warm one (so warm regions stay empty); nullptr if none.
template <class Want>
Region* pick_partial(SlotState& sl, Want want) {
  Region* pick = nullptr;
  for (Region* q = sl.partial; q; q = q->next) {
    if (!want(q)) continue;
    if (!pick || (pick->warm && !q->warm)) pick = q;
    if (!pick->warm) break;
  }
  return pick;
}

// The box's region r of a mid slot has no freed block left, so its next block would be
// carved from memory never touched (a fault for each of its pages, 16 to 64): a region on
// the slot's partial list holding freed blocks (a spill or a slab list, their pages still
// resident) serves first, one in use before a warm one; nullptr if none.
Region* mid_freed_elsewhere(SlotState& sl, const Region* r) {
  return pick_partial(sl,
                      [r](const Region* q) { return q != r && (q->spill || q->slab_free_mask); });
}

}  // namespace

bool context_ensure_slab(Context* ctx, unsigned slot) noexcept {
  SlotState& sl = ctx->slots[slot];
  // Collection point: the box is empty and no slab of its region has a free list, so
  // the next blocks would be carved from fresh memory. What other threads freed comes
  // back first (a thread whose blocks are freed elsewhere otherwise carves new pages
  // while its old ones wait on remote lists: 4x the peers' RSS in the server benchmark).
  // It visits the regions on the slot's queue only: no cost that grows with the heap.
  uint64_t visits = collect_slot(ctx, slot, Pages::kKeep);
  add_relaxed(ctx->refill_collections, 1);
  add_relaxed(ctx->refill_region_visits, visits);
  for (;;) {
    if (Region* r = sl.box_region) {
      if (r->spill) return true;  // the refill takes it
      if (!r->slab_free_mask && slot_kind(slot) == RegionKind::kMid)
        if (Region* q = mid_freed_elsewhere(sl, r)) {
          relist(sl, r);
          box_set_region(ctx, slot, q);
          sl.box_slab = q->slab_free_mask ? __builtin_ctz(q->slab_free_mask) : 0;
          return true;
        }
      if (!region_slab_has_free(r, sl.box_slab)) {
        uint32_t m = r->slab_free_mask | r->slab_uncarved_mask;
        if (m) sl.box_slab = __builtin_ctz(m);
      }
      if (region_slab_has_free(r, sl.box_slab)) return true;
      relist(sl, r);  // exhausted: to the full list (the box leaves it below)
    }
    Region* pick = pick_partial(sl, [](const Region* q) { return q->has_free_space(); });
    if (!pick) {
      pick = orphan_take(slot, ctx);
      if (!pick) {
        pick = region_create(slot);
        if (!pick) return false;
        pick->owner.store(ctx, std::memory_order_relaxed);
      }
      slot_list_push(sl, pick, pick->has_free_space() ? RegionList::kPartial : RegionList::kFull);
    }
    box_set_region(ctx, slot, pick);  // its spill (if any) goes into the box at the fill
    // A region with a spill alone: any slab (the refill takes the spill).
    uint32_t m = pick->slab_free_mask | pick->slab_uncarved_mask;
    sl.box_slab = m ? __builtin_ctz(m) : 0;
  }
}

SpinLock& context_registry_lock() noexcept {
  return g_registry_lock;
}
Context* context_registry_head() noexcept {
  return g_registry;
}

RefillCounts context_refill_counts() noexcept {
  SpinGuard g(g_registry_lock);
  RefillCounts n = g_exited_refills;
  for (Context* t = g_registry; t; t = t->reg_next) {
    n.collections += t->refill_collections.load(std::memory_order_relaxed);
    n.region_visits += t->refill_region_visits.load(std::memory_order_relaxed);
  }
  return n;
}

void thread_init_once() noexcept {
  pthread_key_create(&g_key, on_thread_exit);
}

void thread_register_atfork() noexcept {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

Context* context_create(ContextKind kind) noexcept {
  Context* ctx = nullptr;
  {
    SpinGuard g(g_registry_lock);
    if (g_recycled) {
      ctx = g_recycled;
      g_recycled = ctx->reg_next;
    }
  }
  if (!ctx) {
    void* mem = os_map(kContextBytes, kPageSize);
    if (!mem) return nullptr;
    ctx = reinterpret_cast<Context*>(static_cast<char*>(mem) + kContextOffset);
  }
  new (ctx) Context();
  ctx->kind = kind;
  SpinGuard g(g_registry_lock);
  ctx->id = g_next_id++;
  ctx->reg_next = g_registry;
  if (g_registry) g_registry->reg_prev = ctx;
  g_registry = ctx;
  return ctx;
}

void context_exit(Context* ctx) noexcept {
  context_leave_regions(ctx);
  SpinGuard g(g_registry_lock);
  g_exited_refills.collections += ctx->refill_collections.load(std::memory_order_relaxed);
  g_exited_refills.region_visits += ctx->refill_region_visits.load(std::memory_order_relaxed);
  if (ctx->reg_prev)
    ctx->reg_prev->reg_next = ctx->reg_next;
  else
    g_registry = ctx->reg_next;
  if (ctx->reg_next) ctx->reg_next->reg_prev = ctx->reg_prev;
  ctx->kind = ContextKind::kSentinel;
  ctx->reg_prev = nullptr;
  ctx->reg_next = g_recycled;
  g_recycled = ctx;
}

Context* context_current() noexcept {
  Context* ctx = tl_context;
  if (HAK_LIKELY(ctx != &g_sentinel)) return ctx;
  ensure_init();
  ctx = tl_context;  // a malloc nested in the initialisation may have made it meanwhile
  if (ctx != &g_sentinel) return ctx;
  ctx = context_create(ContextKind::kOsThread);
  if (!ctx) return nullptr;
  tl_context = ctx;
  // Its destructor runs context_exit; a late context exits at once (box_refill_slow).
  if (!tl_exiting) pthread_setspecific(g_key, ctx);
  return ctx;
}

namespace {

// The empty box of slot c takes the free list of a slab of its region, if one has a list
// (no collection, no carve): the cheapest refill. False if none has.
bool box_take_slab_list(Context* ctx, unsigned c) {
  Region* r = ctx->slots[c].box_region;
  if (!r || !r->slab_free_mask) return false;
  unsigned i = __builtin_ctz(r->slab_free_mask);
  SlabMeta& m = r->slabs[i];
  ctx->box[c].free = m.free;
  m.free = nullptr;
  r->slab_free_mask &= ~(1u << i);
  ctx->slots[c].box_slab = i;
  return true;
}

}  // namespace

// The box is empty. Cheapest first: another slab of the box's region whose free list is
// not empty; then the full refill (collection, other regions, adoption, mapping).
void* malloc_slot_slow(unsigned c) noexcept {
  Context* ctx = tl_context;
  if (box_take_slab_list(ctx, c)) return box_pop(ctx, ctx->box[c]);
  return box_refill_slow(c);
}

namespace {

// A refill's periodic work: now and then a collection of every other slot (this one is
// collected by the refill itself), so regions emptied by other threads' frees come back
// within about the purge delay even when this thread no longer allocates their size (a
// builder of 64-byte nodes that other threads free, then allocating only 32-byte ones,
// kept them all); then the purge point.
void refill_tick(Context* ctx, unsigned c) {
  uint64_t now = os_now_ms();
  if (now >= ctx->collect_at_ms) {
    uint32_t every = g_config.purge_delay_ms;
    ctx->collect_at_ms = now + (every > kCollectEveryMinMs ? every : kCollectEveryMinMs);
    for (unsigned s = 0; s < kNumSlots; ++s)
      if (s != c) collect_slot(ctx, s, Pages::kGiveBack);
  }
  context_purge(ctx, false);
  orphan_purge(now, false);
  large_purge_due(now);
}

}  // namespace

namespace {

// The empty box of slot c takes blocks of its region (context_ensure_slab made one with a
// block to give): the region's spill (its latest frees, most likely still in cache), else
// the box slab's whole free list, else up to carve_max blocks carved. True when carved.
bool box_fill(Context* ctx, unsigned c, uint32_t carve_max) {
  Box& box = ctx->box[c];
  Region* r = ctx->slots[c].box_region;
  unsigned i = ctx->slots[c].box_slab;
  SlabMeta& m = r->slabs[i];
  bool carved = false;
  if (r->spill) {
    box.free = r->spill;
    r->spill = nullptr;
  } else if (m.free) {
    box.free = m.free;
    m.free = nullptr;
    r->slab_free_mask &= ~(1u << i);
  } else {
    box.free = region_carve_list(r, i, carve_max);
    carved = true;
  }
  return carved;
}

// Gives the blocks of a list of r back to their slabs.
void put_list(Region* r, FreeBlock* b) {
  while (b) {
    FreeBlock* next = link_next(b);
    region_put(r, b);
    b = next;
  }
}

}  // namespace

void* box_refill_slow(unsigned c) noexcept {
  Context* ctx = context_current();
  if (HAK_UNLIKELY(!ctx)) {
    errno = ENOMEM;
    return nullptr;
  }
  Box& box = ctx->box[c];
  if (!box.free) {
    refill_tick(ctx, c);
    if (!context_ensure_slab(ctx, c)) {
      errno = ENOMEM;
      return nullptr;
    }
    box_fill(ctx, c, kCarveBatch);
  }
  void* p = box_pop(ctx, box);
  if (HAK_UNLIKELY(tl_exiting)) return exit_late_context(ctx, p);
  return p;
}

namespace {

// Clears [p, p + bytes) of a block carved from uncarved memory: only the partial pages.
void clear_fresh(void* p, size_t bytes) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p), e = a + bytes;
  uintptr_t head_end = align_up(a, kPageSize), tail = e & ~(kPageSize - 1);
  if (head_end >= tail) {
    memset(p, 0, bytes);
    return;
  }
  memset(p, 0, head_end - a);
  memset(reinterpret_cast<void*>(tail), 0, e - tail);
}

}  // namespace

void* calloc_mid(unsigned c, size_t bytes) noexcept {
  Context* ctx = context_current();
  if (HAK_UNLIKELY(!ctx)) {
    errno = ENOMEM;
    return nullptr;
  }
  Box& box = ctx->box[c];
  bool fresh = false;
  if (!box.free) {
    // As malloc_slot_slow / box_refill_slow, but a carve takes one block, not a batch
    // (every block carved would have its link written: a page faulted in each).
    if (!box_take_slab_list(ctx, c)) {
      if (!context_ensure_slab(ctx, c)) {
        errno = ENOMEM;
        return nullptr;
      }
      fresh = box_fill(ctx, c, 1);
    }
  }
  void* p = box_pop(ctx, box);
  if (fresh) {
    clear_fresh(p, bytes);
    HAK_MEM_ZEROED(p, bytes);
  } else {
    memset(p, 0, bytes);
  }
  if (HAK_UNLIKELY(tl_exiting)) return exit_late_context(ctx, p);
  return p;
}

void box_flush(Context* ctx, unsigned slot) noexcept {
  put_list(ctx->slots[slot].box_region, ctx->box[slot].free);
  box_clear(ctx, slot);
}

void spill_flush(Region* r) noexcept {
  put_list(r, r->spill);
  r->spill = nullptr;
}

}  // namespace hak
