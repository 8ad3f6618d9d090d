#include "thread/context.h"

#include <errno.h>
#include <pthread.h>

#include <cstring>
#include <new>

#include "config/config.h"
#include "large/large.h"
#include "os/os.h"
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

constexpr size_t kContextBytes = align_up(sizeof(Context), kPageSize);

Region*& list_head(SlotState& sl, RegionList l) {
  return l == RegionList::kPartial ? sl.partial : sl.full;
}

void list_unlink(SlotState& sl, Region* r) {
  region_list_unlink(list_head(sl, r->list), r);
}

void list_push(SlotState& sl, Region* r, RegionList l) {
  region_list_push(list_head(sl, l), r, l);
}

// Keeps a region on the list that matches whether it has blocks to give.
void relist(SlotState& sl, Region* r) {
  RegionList want = r->has_free_space() ? RegionList::kPartial : RegionList::kFull;
  if (r->list == want) return;
  list_unlink(sl, r);
  list_push(sl, r, want);
}

// The box of a slot hands out blocks of r from now on (its spill is empty): the frees of
// r push on the box, those of the box's previous region on its own spill again.
void box_set_region(Box& box, Region* r) {
  if (box.seg == r) return;
  if (Region* old = box.seg) old->local_head = &old->spill;
  r->local_head = &box.free;
  box.seg = r;
}
void box_clear(Box& box) {
  if (Region* old = box.seg) old->local_head = &old->spill;
  box = Box{};
}

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
  Box& box = ctx->box[r->slot];
  if (box.seg != r) return;
  if (keep < 0) {
    box_clear(box);
    return;
  }
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
  if (r == sl.cur) {
    purge_caches(ctx, r, static_cast<int>(sl.cur_slab));
    region_reset_except(r, sl.cur_slab);
  } else {
    purge_caches(ctx, r, -1);
    region_reset(r, true);
  }
  relist(sl, r);
}

// How a region that became empty is kept warm.
enum class Pages : bool {
  kGiveBack,  // pages given back after the purge delay (at once when it is 0)
  kKeep,      // found empty by a refill's collection: it is about to be carved again
};

// The owner's region has no live block and no pending remote free. keep_pages: when
// released, its pages wait in the large-run cache for the purge delay (the owner emptied
// it with its own frees: it allocates the size, a new region is near). A collection gives
// them back at once: a thread that no longer allocates the size may make no purge point for
// long (bench stranded kept 100 MB), and a producer whose blocks other threads free took
// the dirty pages into regions that carved a few blocks before emptying again (bench
// prodcons: peak RSS 7.7 -> 16-19 MB).
// Out of line: region_check_empty tail-calls it and keeps its short path frameless.
HAK_NOINLINE void region_became_empty(Context* ctx, Region* r, Pages pages,
                                      bool keep_pages = true) {
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
  purge_caches(ctx, r, -1);
  if (sl.cur == r) sl.cur = nullptr;
  list_unlink(sl, r);
  region_release(r, keep_pages);
}

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

// A region the owner took off its queue: its remote frees come back, then the empty
// rule if it is empty. acq_rel: acquire orders the blocks; release, because the next free
// finds the list empty and writes queue_next, which the caller read before.
void collect_queued(Context* ctx, Region* r, Pages pages) {
  uintptr_t list = r->remote_head.exchange(0, std::memory_order_acq_rel);
  region_collect(r, list);
  relist(ctx->slots[r->slot], r);
  if (r->active_local.load(std::memory_order_relaxed) == 0 && !r->warm)
    region_became_empty(ctx, r, pages, false);
}

// A collection point of slot c: the regions on its queue, the only ones with remote frees
// to collect (no other owned region is empty and not warm: the free that empties one
// applies the empty rule). Returns the number of regions visited.
uint64_t collect_class(Context* ctx, unsigned c, Pages pages) {
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

// The fork child: a lost thread may have stopped between a push on a remote list and the
// region's push on the queue. Each queue is rebuilt from the lists.
void requeue_after_fork(Context* t) {
  for (unsigned c = 0; c < kNumSlots; ++c) {
    SlotState& sl = t->slots[c];
    sl.remote_regions.store(nullptr, std::memory_order_relaxed);
    for (RegionList l : {RegionList::kFull, RegionList::kPartial}) {
      for (Region* r = list_head(sl, l); r; r = r->next) {
        r->dequeued = 0;
        if (r->remote_head.load(std::memory_order_relaxed) != 0) queue_push(sl, r, r);
      }
    }
  }
}

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
// (the forking thread's, or an abandoned one), after counting it in remote_pending and
// before pushing it: the count would never drop and the region never be empty again. With
// no other thread left every pending free is on the list, so a region whose count differs
// is rebuilt from its state map, which completes that free.
void repair_surviving_regions() {
  SpinGuard g(orphan_lock());
  registry_for_each([&](uintptr_t base) {
    RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
    if (!is_class_region(k)) return;  // class regions only
    Region* r = reinterpret_cast<Region*>(base);
    uint32_t pending = r->remote_pending.load(std::memory_order_relaxed);
    uintptr_t head = r->remote_head.load(std::memory_order_relaxed);
    if (pending == remote_list_length(head)) return;
    Context* owner = r->owner.load(std::memory_order_relaxed);
    if (owner) {  // the forking thread's: its box may hold blocks the rebuild lists again
      Box& box = owner->box[r->slot];
      if (box.seg == r) box_flush(box);
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
    if (!lost_in_fork(t)) requeue_after_fork(t);
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

}  // namespace

bool context_ensure_slab(Context* ctx, unsigned slot) noexcept {
  SlotState& sl = ctx->slots[slot];
  // Collection point: the box is empty and no slab of its region has a free list, so
  // the next blocks would be carved from fresh memory. What other threads freed comes
  // back first (a thread whose blocks are freed elsewhere otherwise carves new pages
  // while its old ones wait on remote lists: 4x the peers' RSS in the server benchmark).
  // It visits the regions on the slot's queue only: no cost that grows with the heap.
  uint64_t visits = collect_class(ctx, slot, Pages::kKeep);
  add_relaxed(ctx->refill_collections, 1);
  add_relaxed(ctx->refill_region_visits, visits);
  for (;;) {
    if (Region* r = sl.cur) {
      if (r->spill) return true;  // the refill takes it
      if (!region_slab_has_free(r, sl.cur_slab)) {
        uint32_t m = r->slab_free_mask | r->slab_uncarved_mask;
        if (m) sl.cur_slab = __builtin_ctz(m);
      }
      if (region_slab_has_free(r, sl.cur_slab)) return true;
      relist(sl, r);  // exhausted: to the full list
      sl.cur = nullptr;
    }
    // Prefer a region in use over a warm one, so warm regions stay empty.
    Region* pick = nullptr;
    for (Region* r = sl.partial; r; r = r->next) {
      if (!r->has_free_space()) continue;
      if (!pick || (pick->warm && !r->warm)) pick = r;
      if (!pick->warm) break;
    }
    if (!pick) {
      pick = orphan_take(slot, ctx);
      if (!pick) {
        pick = region_create(slot);
        if (!pick) return false;
        pick->owner.store(ctx, std::memory_order_relaxed);
      }
      list_push(sl, pick, pick->has_free_space() ? RegionList::kPartial : RegionList::kFull);
    }
    sl.cur = pick;
    // A region with a spill alone: any slab (the refill takes the spill).
    uint32_t m = pick->slab_free_mask | pick->slab_uncarved_mask;
    sl.cur_slab = m ? __builtin_ctz(m) : 0;
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
    ctx = static_cast<Context*>(mem);
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
  while (Region* r = ctx->purge_head) purge_unlist(ctx, r);  // pooled regions give all back
  for (unsigned c = 0; c < kNumSlots; ++c) {
    SlotState& sl = ctx->slots[c];
    box_flush(ctx->box[c]);
    sl.cur = nullptr;
    for (RegionList l : {RegionList::kPartial, RegionList::kFull}) {
      while (Region* r = list_head(sl, l)) {
        list_unlink(sl, r);
        spill_flush(r);
        if (r->warm) {
          r->warm = 0;
          --sl.warm_count;
        }
        orphan_abandon(r);
      }
    }
  }
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

void context_collect(Context* ctx) noexcept {
  for (unsigned c = 0; c < kNumSlots; ++c) collect_class(ctx, c, Pages::kGiveBack);
  context_purge(ctx, true);  // hak_collect gives back at once, whatever the delay
  orphan_purge(0, true);
}

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
      if (sl.cur == r) sl.cur = nullptr;
      region_reset(r, true);
    }
  }
}

// The box is empty. Cheapest first: another slab of the box's region whose free list is
// not empty; then the full refill (collection, other regions, adoption, mapping).
void* malloc_slot_slow(unsigned c) noexcept {
  Context* ctx = tl_context;
  Box& box = ctx->box[c];
  if (Region* r = box.seg; r && r->slab_free_mask) {
    unsigned i = __builtin_ctz(r->slab_free_mask);
    SlabMeta& m = r->slabs[i];
    box.free = m.free;
    m.free = nullptr;
    r->slab_free_mask &= ~(1u << i);
    ctx->slots[c].cur_slab = i;
    return box_pop(ctx, box);
  }
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
      if (s != c) collect_class(ctx, s, Pages::kGiveBack);
  }
  context_purge(ctx, false);
  orphan_purge(now, false);
  large_purge_due(now);
}

}  // namespace

namespace {

// The empty box of slot c takes blocks of the slot's current region (context_ensure_slab
// made one): the region's spill (its latest frees, most likely still in cache), else the
// current slab's whole free list, else up to carve_max blocks carved. True when carved.
bool box_fill(Context* ctx, unsigned c, uint32_t carve_max) {
  Box& box = ctx->box[c];
  SlotState& sl = ctx->slots[c];
  Region* r = sl.cur;
  unsigned i = sl.cur_slab;
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
  box_set_region(box, r);
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
    if (Region* r = box.seg; r && r->slab_free_mask) {
      unsigned i = __builtin_ctz(r->slab_free_mask);
      box.free = r->slabs[i].free;
      r->slabs[i].free = nullptr;
      r->slab_free_mask &= ~(1u << i);
      ctx->slots[c].cur_slab = i;
    } else {
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

void box_flush(Box& box) noexcept {
  put_list(box.seg, box.free);
  box_clear(box);
}

void spill_flush(Region* r) noexcept {
  put_list(r, r->spill);
  r->spill = nullptr;
}

void* region_left_empty(Context* ctx, Region* r, void* p) noexcept {
  if (r->warm) {
    r->warm = 0;
    --ctx->slots[r->slot].warm_count;
  }
  return p;
}

void free_list_started(Context* ctx, Region* r, uint32_t left) noexcept {
  // The box's list (r is its region): nothing to do. A spill: a full region has a free
  // block again, back to the partial list.
  if (r->local_head == &r->spill && r->list == RegionList::kFull) {
    SlotState& sl = ctx->slots[r->slot];
    list_unlink(sl, r);
    list_push(sl, r, RegionList::kPartial);
  }
  if (left == 0) region_check_empty(ctx, r);
}

void region_check_empty(Context* ctx, Region* r) noexcept {
  // active_local == 0: no live block, and no remote free on its way either (active_local
  // counts those until they are collected), so nothing to collect here: the empty rule.
  // The common case, a malloc/free ping-pong on the current region, in short: room in the
  // warm reserve, no other slab to decommit. The same steps region_became_empty takes
  // for it.
  SlotState& sl = ctx->slots[r->slot];
  if (r == sl.cur && !r->warm && sl.warm_count < g_config.warm_regions &&
      (r->slab_carved_mask & ~(1u << sl.cur_slab)) == 0) {
    ++sl.warm_count;
    r->warm = 1;
    relist(sl, r);
    return;
  }
  region_became_empty(ctx, r, Pages::kGiveBack);
}

namespace {

// After the block's push that found the list empty. The owner is the context that wrote
// that empty list (the CAS's acquire): it stays the owner until its exit, which waits for
// this push (region_queue_leave).
void region_queue_push(Region* r) {
  Context* ctx = r->owner.load(std::memory_order_relaxed);
  queue_push(ctx->slots[r->slot], r, r);
}

}  // namespace

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
    // Counted before the push, so remote_pending >= the list's length and the owner
    // cannot release the region while this block is still on its way.
    r->remote_pending.fetch_add(1, std::memory_order_relaxed);
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
    r->remote_pending.fetch_sub(1, std::memory_order_relaxed);
    HAK_MEM_ALLOCATED(p, r->usable());
    st.store(kLive, std::memory_order_relaxed);
    if (free_abandoned(r, p, off, call)) return;
  }
}

}  // namespace hak
