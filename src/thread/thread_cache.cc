#include "thread/thread_cache.h"

#include <errno.h>
#include <pthread.h>

#include <cstring>
#include <new>

#include "config/config.h"
#include "large/large.h"
#include "os/os.h"
#include "regionmap/registry.h"

namespace hak {

constinit thread_local ThreadCache* tl_tc __attribute__((tls_model("initial-exec"))) =
    &g_sentinel_tc;
ThreadCache g_sentinel_tc;

namespace {

pthread_key_t g_key;
SpinLock g_registry_lock;
ThreadCache* g_registry = nullptr;
ThreadCache* g_recycled = nullptr;  // freed contexts, linked through reg_next
uint64_t g_next_id = 1;
RefillCounts g_exited_refills;  // of contexts that exited (registry lock)

constexpr size_t kContextBytes = align_up(sizeof(ThreadCache), kPageSize);

SuperSlab*& list_head(ClassCache& cc, SuperSlabList l) {
  return l == SuperSlabList::kPartial ? cc.partial : cc.full;
}

void list_unlink(ClassCache& cc, SuperSlab* ss) {
  superslab_list_unlink(list_head(cc, ss->list), ss);
}

void list_push(ClassCache& cc, SuperSlab* ss, SuperSlabList l) {
  superslab_list_push(list_head(cc, l), ss, l);
}

// Keeps a region on the list that matches whether it has blocks to give.
void relist(ClassCache& cc, SuperSlab* ss) {
  SuperSlabList want = ss->has_free_space() ? SuperSlabList::kPartial : SuperSlabList::kFull;
  if (ss->list == want) return;
  list_unlink(cc, ss);
  list_push(cc, ss, want);
}

// The box of a slot hands out blocks of ss from now on (its spill is empty): the frees of
// ss push on the box, those of the box's previous region on its own spill again.
void box_set_region(Box& box, SuperSlab* ss) {
  if (box.seg == ss) return;
  if (SuperSlab* old = box.seg) old->local_head = &old->spill;
  ss->local_head = &box.free;
  box.seg = ss;
}
void box_clear(Box& box) {
  if (SuperSlab* old = box.seg) old->local_head = &old->spill;
  box = Box{};
}

// Drops cached free blocks of `ss` (all of them, or all but those of slab `keep`): they
// are about to be reset or unmapped. One walk of the spill and of the box; the spill's
// blocks of `keep` go back on its slab's list (superslab_reset_except keeps it).
void purge_caches(ThreadCache* tc, SuperSlab* ss, int keep) {
  FreeBlock* spill = ss->spill;
  ss->spill = nullptr;
  if (keep >= 0) {
    for (FreeBlock* b = spill; b;) {
      FreeBlock* next = link_next(b);
      if (((reinterpret_cast<uintptr_t>(b) - ss->base()) >> kSlabShift) ==
          static_cast<uintptr_t>(keep))
        superslab_put(ss, b);
      b = next;
    }
  }
  Box& box = tc->box[ss->slot];
  if (box.seg != ss) return;
  if (keep < 0) {
    box_clear(box);
    return;
  }
  FreeBlock* kept = nullptr;
  for (FreeBlock* b = box.free; b;) {
    FreeBlock* next = link_next(b);
    if (((reinterpret_cast<uintptr_t>(b) - ss->base()) >> kSlabShift) ==
        static_cast<uintptr_t>(keep)) {
      link_set(b, kept);
      kept = b;
    }
    b = next;
  }
  box.free = kept;
}

// The purge list (ThreadCache::purge_head): regions whose pages wait for the delay since
// they became warm. A region that left the warm state stays listed (unlisting it there
// would cost the malloc that takes its first block): the purge skips it, and it is
// unlisted before it is released.
void purge_unlist(ThreadCache* tc, SuperSlab* ss) {
  if (!ss->purge_listed) return;
  (ss->purge_prev ? ss->purge_prev->purge_next : tc->purge_head) = ss->purge_next;
  (ss->purge_next ? ss->purge_next->purge_prev : tc->purge_tail) = ss->purge_prev;
  ss->purge_next = ss->purge_prev = nullptr;
  ss->purge_listed = false;
}
void purge_list(ThreadCache* tc, SuperSlab* ss) {
  purge_unlist(tc, ss);  // a later due time: to the tail
  ss->purge_at_ms = os_now_ms() + g_config.purge_delay_ms;
  ss->purge_prev = tc->purge_tail;
  ss->purge_next = nullptr;
  (tc->purge_tail ? tc->purge_tail->purge_next : tc->purge_head) = ss;
  tc->purge_tail = ss;
  ss->purge_listed = true;
}

// Gives back the pages of the warm region ss, except those of the slab tc carves from
// (so a malloc/free ping-pong costs no system call); its cached blocks go first.
void give_back_pages(ThreadCache* tc, SuperSlab* ss) {
  ClassCache& cc = tc->cls[ss->slot];
  purge_unlist(tc, ss);
  if (ss == cc.cur) {
    purge_caches(tc, ss, static_cast<int>(cc.cur_slab));
    superslab_reset_except(ss, cc.cur_slab);
  } else {
    purge_caches(tc, ss, -1);
    superslab_reset(ss, true);
  }
  relist(cc, ss);
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
// Out of line: superslab_check_empty tail-calls it and keeps its short path frameless.
HAK_NOINLINE void region_became_empty(ThreadCache* tc, SuperSlab* ss, Pages pages,
                                      bool keep_pages = true) {
  ClassCache& cc = tc->cls[ss->slot];
  if (ss->warm) return;
  if (cc.warm_count < g_config.warm_regions) {
    // Kept: it stays mapped in this context, and its pages go back after the purge delay
    // (a program that empties and refills a region in a loop faulted them in again at
    // once). A refill keeps them until its next purge point even when the delay is 0: a
    // producer whose blocks another thread frees finds its regions empty at every refill,
    // and giving the pages back there made it fault them in again at once (docs/DESIGN.md
    // section 10: hysteresis).
    ++cc.warm_count;
    ss->warm = 1;
    if (pages == Pages::kGiveBack && g_config.purge_delay_ms == 0) return give_back_pages(tc, ss);
    purge_list(tc, ss);
    relist(cc, ss);
    return;
  }
  purge_unlist(tc, ss);
  purge_caches(tc, ss, -1);
  if (cc.cur == ss) cc.cur = nullptr;
  list_unlink(cc, ss);
  superslab_unmap(ss, keep_pages);
}

// The region queue of a slot (ClassCache::remote_regions). The remote free whose push
// finds a region's remote list empty pushes the region on its owner's queue, after its
// block (superslab_free_remote). So an owned region is on the queue, or its push is under
// way, exactly while its remote list is not empty, and a collection visits those regions
// only, however many the slot has. Until the owner takes a region off the queue it cannot
// collect its list (the exit waits for the push: region_queue_leave), and a region whose
// list is not empty has a pending free and a live block: it stays mapped while its pusher
// still touches it. The owner takes the whole queue at once (no ABA: nobody else pops).

// acquire: the pushers' links (and their blocks' bits, through the lists' own releases).
SuperSlab* queue_take(ClassCache& cc) {
  return cc.remote_regions.exchange(nullptr, std::memory_order_acquire);
}

// Pushes the chain first..last (linked through queue_next).
void queue_push(ClassCache& cc, SuperSlab* first, SuperSlab* last) {
  SuperSlab* top = cc.remote_regions.load(std::memory_order_relaxed);
  do {
    last->queue_next.store(top, std::memory_order_relaxed);
    // release: the owner's queue_take sees the link.
  } while (!cc.remote_regions.compare_exchange_weak(top, first, std::memory_order_release,
                                                    std::memory_order_relaxed));
}

// A region the owner took off its queue: its remote frees come back, then the empty
// rule if it is empty. acq_rel: acquire orders the blocks; release, because the next free
// finds the list empty and writes queue_next, which the caller read before.
void collect_queued(ThreadCache* tc, SuperSlab* ss, Pages pages) {
  uintptr_t list = ss->remote_head.exchange(0, std::memory_order_acq_rel);
  superslab_collect(ss, list);
  relist(tc->cls[ss->slot], ss);
  if (ss->active_local.load(std::memory_order_relaxed) == 0 && !ss->warm)
    region_became_empty(tc, ss, pages, false);
}

// A collection point of slot c: the regions on its queue, the only ones with remote frees
// to collect (no other owned region is empty and not warm: the free that empties one
// applies the empty rule). Returns the number of regions visited.
uint64_t collect_class(ThreadCache* tc, unsigned c, Pages pages) {
  ClassCache& cc = tc->cls[c];
  // No owned region, none queued: no atomic operation for the slots a context does not use
  // (hak_collect runs every slot).
  if (!cc.partial && !cc.full) return 0;
  uint64_t visits = 0;
  for (SuperSlab* ss = queue_take(cc); ss; ++visits) {
    // Read first: once its list is taken, a free may push the region again.
    SuperSlab* next = ss->queue_next.load(std::memory_order_relaxed);
    collect_queued(tc, ss, pages);
    ss = next;
  }
  return visits;
}

// The fork child: a lost thread may have stopped between a push on a remote list and the
// region's push on the queue. Each queue is rebuilt from the lists.
void requeue_after_fork(ThreadCache* t) {
  for (unsigned c = 0; c < kNumSlots; ++c) {
    ClassCache& cc = t->cls[c];
    cc.remote_regions.store(nullptr, std::memory_order_relaxed);
    for (SuperSlabList l : {SuperSlabList::kFull, SuperSlabList::kPartial}) {
      for (SuperSlab* ss = list_head(cc, l); ss; ss = ss->next) {
        ss->dequeued = 0;
        if (ss->remote_head.load(std::memory_order_relaxed) != 0) queue_push(cc, ss, ss);
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
  ThreadCache* tc = static_cast<ThreadCache*>(arg);
  tl_tc = &g_sentinel_tc;  // anything allocated from here on gets a fresh context
  tl_exiting = true;
  thread_cache_exit(tc);
}

// An allocation after the thread's context exited is done: its region is abandoned (or
// released when empty), as at any thread exit.
void* exit_late_context(ThreadCache* tc, void* p) {
  tl_tc = &g_sentinel_tc;
  thread_cache_exit(tc);
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
bool lost_in_fork(const ThreadCache* t) {
  return t && t != tl_tc && t->kind == ContextKind::kOsThread;
}

// A class region whose owner was lost in the fork, or nullptr.
SuperSlab* region_of_lost_context() {
  SuperSlab* found = nullptr;
  registry_for_each([&](uintptr_t base) {
    RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
    if (found || !is_class_region(k)) return;  // class regions only
    SuperSlab* ss = reinterpret_cast<SuperSlab*>(base);
    if (lost_in_fork(ss->owner.load(std::memory_order_relaxed))) found = ss;
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
    SuperSlab* ss = reinterpret_cast<SuperSlab*>(base);
    uint32_t pending = ss->remote_pending.load(std::memory_order_relaxed);
    uintptr_t head = ss->remote_head.load(std::memory_order_relaxed);
    if (pending == remote_list_length(head)) return;
    ThreadCache* owner = ss->owner.load(std::memory_order_relaxed);
    if (owner) {  // the forking thread's: its box may hold blocks the rebuild lists again
      Box& box = owner->box[ss->slot];
      if (box.seg == ss) box_flush(box);
      superslab_rebuild(ss);
      relist(owner->cls[ss->slot], ss);
    } else {  // abandoned: adopted (then collected) like any other once it has room
      superslab_rebuild(ss);
      ss->remote_head.store(head & kAbandonedTag, std::memory_order_relaxed);
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
  while (SuperSlab* ss = region_of_lost_context()) {
    {
      SpinGuard g(orphan_lock());
      superslab_rebuild(ss);
    }
    ss->warm = 0;
    ss->purge_listed = false;  // on a lost context's purge list
    ss->list = SuperSlabList::kNone;
    orphan_abandon(ss);
  }
  repair_surviving_regions();
  // Then the contexts themselves are recycled, their contents unread.
  SpinGuard g(g_registry_lock);
  for (ThreadCache* t = g_registry; t;) {
    ThreadCache* next = t->reg_next;
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

bool thread_cache_ensure_slab(ThreadCache* tc, unsigned slot) noexcept {
  ClassCache& cc = tc->cls[slot];
  // Collection point: the box is empty and no slab of its region has a free list, so
  // the next blocks would be carved from fresh memory. What other threads freed comes
  // back first (a thread whose blocks are freed elsewhere otherwise carves new pages
  // while its old ones wait on remote lists: 4x the peers' RSS in the server benchmark).
  // It visits the regions on the slot's queue only: no cost that grows with the heap.
  uint64_t visits = collect_class(tc, slot, Pages::kKeep);
  add_relaxed(tc->refill_collections, 1);
  add_relaxed(tc->refill_region_visits, visits);
  for (;;) {
    if (SuperSlab* ss = cc.cur) {
      if (ss->spill) return true;  // the refill takes it
      if (!superslab_slab_has_free(ss, cc.cur_slab)) {
        uint32_t m = ss->slab_free_mask | ss->slab_uncarved_mask;
        if (m) cc.cur_slab = __builtin_ctz(m);
      }
      if (superslab_slab_has_free(ss, cc.cur_slab)) return true;
      relist(cc, ss);  // exhausted: to the full list
      cc.cur = nullptr;
    }
    // Prefer a region in use over a warm one, so warm regions stay empty.
    SuperSlab* pick = nullptr;
    for (SuperSlab* ss = cc.partial; ss; ss = ss->next) {
      if (!ss->has_free_space()) continue;
      if (!pick || (pick->warm && !ss->warm)) pick = ss;
      if (!pick->warm) break;
    }
    if (!pick) {
      pick = orphan_take(slot, tc);
      if (!pick) {
        pick = superslab_map(slot);
        if (!pick) return false;
        pick->owner.store(tc, std::memory_order_relaxed);
      }
      list_push(cc, pick, pick->has_free_space() ? SuperSlabList::kPartial : SuperSlabList::kFull);
    }
    cc.cur = pick;
    // A region with a spill alone: any slab (the refill takes the spill).
    uint32_t m = pick->slab_free_mask | pick->slab_uncarved_mask;
    cc.cur_slab = m ? __builtin_ctz(m) : 0;
  }
}

SpinLock& thread_cache_registry_lock() noexcept {
  return g_registry_lock;
}
ThreadCache* thread_cache_registry_head() noexcept {
  return g_registry;
}

RefillCounts thread_cache_refill_counts() noexcept {
  SpinGuard g(g_registry_lock);
  RefillCounts n = g_exited_refills;
  for (ThreadCache* t = g_registry; t; t = t->reg_next) {
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

ThreadCache* thread_cache_create(ContextKind kind) noexcept {
  ThreadCache* tc = nullptr;
  {
    SpinGuard g(g_registry_lock);
    if (g_recycled) {
      tc = g_recycled;
      g_recycled = tc->reg_next;
    }
  }
  if (!tc) {
    void* mem = os_map(kContextBytes, kPageSize);
    if (!mem) return nullptr;
    tc = static_cast<ThreadCache*>(mem);
  }
  new (tc) ThreadCache();
  tc->kind = kind;
  SpinGuard g(g_registry_lock);
  tc->id = g_next_id++;
  tc->reg_next = g_registry;
  if (g_registry) g_registry->reg_prev = tc;
  g_registry = tc;
  return tc;
}

void thread_cache_exit(ThreadCache* tc) noexcept {
  while (SuperSlab* ss = tc->purge_head) purge_unlist(tc, ss);  // pooled regions give all back
  for (unsigned c = 0; c < kNumSlots; ++c) {
    ClassCache& cc = tc->cls[c];
    box_flush(tc->box[c]);
    cc.cur = nullptr;
    for (SuperSlabList l : {SuperSlabList::kPartial, SuperSlabList::kFull}) {
      while (SuperSlab* ss = list_head(cc, l)) {
        list_unlink(cc, ss);
        spill_flush(ss);
        if (ss->warm) {
          ss->warm = 0;
          --cc.warm_count;
        }
        orphan_abandon(ss);
      }
    }
  }
  SpinGuard g(g_registry_lock);
  g_exited_refills.collections += tc->refill_collections.load(std::memory_order_relaxed);
  g_exited_refills.region_visits += tc->refill_region_visits.load(std::memory_order_relaxed);
  if (tc->reg_prev)
    tc->reg_prev->reg_next = tc->reg_next;
  else
    g_registry = tc->reg_next;
  if (tc->reg_next) tc->reg_next->reg_prev = tc->reg_prev;
  tc->kind = ContextKind::kSentinel;
  tc->reg_prev = nullptr;
  tc->reg_next = g_recycled;
  g_recycled = tc;
}

ThreadCache* thread_cache_current() noexcept {
  ThreadCache* tc = tl_tc;
  if (HAK_LIKELY(tc != &g_sentinel_tc)) return tc;
  ensure_init();
  tc = tl_tc;  // a malloc nested in the initialisation may have made it meanwhile
  if (tc != &g_sentinel_tc) return tc;
  tc = thread_cache_create(ContextKind::kOsThread);
  if (!tc) return nullptr;
  tl_tc = tc;
  // Its destructor runs thread_cache_exit; a late context exits at once (box_refill_slow).
  if (!tl_exiting) pthread_setspecific(g_key, tc);
  return tc;
}

void thread_cache_collect(ThreadCache* tc) noexcept {
  for (unsigned c = 0; c < kNumSlots; ++c) collect_class(tc, c, Pages::kGiveBack);
  thread_cache_purge(tc, true);  // hak_collect gives back at once, whatever the delay
  orphan_purge(0, true);
}

void thread_cache_purge(ThreadCache* tc, bool force) noexcept {
  if (!tc->purge_head) return;
  uint64_t now = force ? 0 : os_now_ms();
  while (SuperSlab* ss = tc->purge_head) {
    if (!ss->warm) {  // in use again since it was listed: its pages are wanted
      purge_unlist(tc, ss);
      continue;
    }
    if (!force && ss->purge_at_ms > now) return;
    give_back_pages(tc, ss);
  }
}

void thread_cache_trim(ThreadCache* tc) noexcept {
  thread_cache_collect(tc);
  for (unsigned c = 0; c < kNumSlots; ++c) {
    ClassCache& cc = tc->cls[c];
    for (SuperSlab* ss = cc.partial; ss; ss = ss->next) {
      // Nothing carved since its last reset: no page to give back (fuzz_api trims after
      // every input: about 37 warm regions were reset each time, their ASan shadow too).
      if (!ss->warm || !ss->slab_carved_mask) continue;
      // All its pages, the slab being carved from included (the empty rule keeps those).
      purge_unlist(tc, ss);
      purge_caches(tc, ss, -1);
      if (cc.cur == ss) cc.cur = nullptr;
      superslab_reset(ss, true);
    }
  }
}

// The box is empty. Cheapest first: another slab of the box's region whose free list is
// not empty; then the full refill (collection, other regions, adoption, mapping).
void* malloc_slot_slow(unsigned c) noexcept {
  ThreadCache* tc = tl_tc;
  Box& box = tc->box[c];
  if (SuperSlab* ss = box.seg; ss && ss->slab_free_mask) {
    unsigned i = __builtin_ctz(ss->slab_free_mask);
    SlabMeta& m = ss->slabs[i];
    box.free = m.free;
    m.free = nullptr;
    ss->slab_free_mask &= ~(1u << i);
    tc->cls[c].cur_slab = i;
    return box_pop(tc, box);
  }
  return box_refill_slow(c);
}

namespace {

// A refill's periodic work: now and then a collection of every other slot (this one is
// collected by the refill itself), so regions emptied by other threads' frees come back
// within about the purge delay even when this thread no longer allocates their size (a
// builder of 64-byte nodes that other threads free, then allocating only 32-byte ones,
// kept them all); then the purge point.
void refill_tick(ThreadCache* tc, unsigned c) {
  uint64_t now = os_now_ms();
  if (now >= tc->collect_at_ms) {
    uint32_t every = g_config.purge_delay_ms;
    tc->collect_at_ms = now + (every > kCollectEveryMinMs ? every : kCollectEveryMinMs);
    for (unsigned s = 0; s < kNumSlots; ++s)
      if (s != c) collect_class(tc, s, Pages::kGiveBack);
  }
  thread_cache_purge(tc, false);
  orphan_purge(now, false);
  large_purge_due(now);
}

}  // namespace

namespace {

// The empty box of slot c takes blocks of the slot's current region (thread_cache_ensure_slab
// made one): the region's spill (its latest frees, most likely still in cache), else the
// current slab's whole free list, else up to carve_max blocks carved. True when carved.
bool box_fill(ThreadCache* tc, unsigned c, uint32_t carve_max) {
  Box& box = tc->box[c];
  ClassCache& cc = tc->cls[c];
  SuperSlab* ss = cc.cur;
  unsigned i = cc.cur_slab;
  SlabMeta& m = ss->slabs[i];
  bool carved = false;
  if (ss->spill) {
    box.free = ss->spill;
    ss->spill = nullptr;
  } else if (m.free) {
    box.free = m.free;
    m.free = nullptr;
    ss->slab_free_mask &= ~(1u << i);
  } else {
    box.free = superslab_carve_list(ss, i, carve_max);
    carved = true;
  }
  box_set_region(box, ss);
  return carved;
}

// Gives the blocks of a list of ss back to their slabs.
void put_list(SuperSlab* ss, FreeBlock* b) {
  while (b) {
    FreeBlock* next = link_next(b);
    superslab_put(ss, b);
    b = next;
  }
}

}  // namespace

void* box_refill_slow(unsigned c) noexcept {
  ThreadCache* tc = thread_cache_current();
  if (HAK_UNLIKELY(!tc)) {
    errno = ENOMEM;
    return nullptr;
  }
  Box& box = tc->box[c];
  if (!box.free) {
    refill_tick(tc, c);
    if (!thread_cache_ensure_slab(tc, c)) {
      errno = ENOMEM;
      return nullptr;
    }
    box_fill(tc, c, kCarveBatch);
  }
  void* p = box_pop(tc, box);
  if (HAK_UNLIKELY(tl_exiting)) return exit_late_context(tc, p);
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
  ThreadCache* tc = thread_cache_current();
  if (HAK_UNLIKELY(!tc)) {
    errno = ENOMEM;
    return nullptr;
  }
  Box& box = tc->box[c];
  bool fresh = false;
  if (!box.free) {
    // As malloc_slot_slow / box_refill_slow, but a carve takes one block, not a batch
    // (every block carved would have its link written: a page faulted in each).
    if (SuperSlab* ss = box.seg; ss && ss->slab_free_mask) {
      unsigned i = __builtin_ctz(ss->slab_free_mask);
      box.free = ss->slabs[i].free;
      ss->slabs[i].free = nullptr;
      ss->slab_free_mask &= ~(1u << i);
      tc->cls[c].cur_slab = i;
    } else {
      if (!thread_cache_ensure_slab(tc, c)) {
        errno = ENOMEM;
        return nullptr;
      }
      fresh = box_fill(tc, c, 1);
    }
  }
  void* p = box_pop(tc, box);
  if (fresh) {
    clear_fresh(p, bytes);
    HAK_MEM_ZEROED(p, bytes);
  } else {
    memset(p, 0, bytes);
  }
  if (HAK_UNLIKELY(tl_exiting)) return exit_late_context(tc, p);
  return p;
}

void box_flush(Box& box) noexcept {
  put_list(box.seg, box.free);
  box_clear(box);
}

void spill_flush(SuperSlab* ss) noexcept {
  put_list(ss, ss->spill);
  ss->spill = nullptr;
}

void* superslab_left_empty(ThreadCache* tc, SuperSlab* ss, void* p) noexcept {
  if (ss->warm) {
    ss->warm = 0;
    --tc->cls[ss->slot].warm_count;
  }
  return p;
}

void free_list_started(ThreadCache* tc, SuperSlab* ss, uint32_t left) noexcept {
  // The box's list (ss is its region): nothing to do. A spill: a full region has a free
  // block again, back to the partial list.
  if (ss->local_head == &ss->spill && ss->list == SuperSlabList::kFull) {
    ClassCache& cc = tc->cls[ss->slot];
    list_unlink(cc, ss);
    list_push(cc, ss, SuperSlabList::kPartial);
  }
  if (left == 0) superslab_check_empty(tc, ss);
}

void superslab_check_empty(ThreadCache* tc, SuperSlab* ss) noexcept {
  // active_local == 0: no live block, and no remote free on its way either (active_local
  // counts those until they are collected), so nothing to collect here: the empty rule.
  // The common case, a malloc/free ping-pong on the current region, in short: room in the
  // warm reserve, no other slab to decommit. The same steps region_became_empty takes
  // for it.
  ClassCache& cc = tc->cls[ss->slot];
  if (ss == cc.cur && !ss->warm && cc.warm_count < g_config.warm_regions &&
      (ss->slab_carved_mask & ~(1u << cc.cur_slab)) == 0) {
    ++cc.warm_count;
    ss->warm = 1;
    relist(cc, ss);
    return;
  }
  region_became_empty(tc, ss, Pages::kGiveBack);
}

namespace {

// After the block's push that found the list empty. The owner is the context that wrote
// that empty list (the CAS's acquire): it stays the owner until its exit, which waits for
// this push (region_queue_leave).
void region_queue_push(SuperSlab* ss) {
  ThreadCache* tc = ss->owner.load(std::memory_order_relaxed);
  queue_push(tc->cls[ss->slot], ss, ss);
}

}  // namespace

void region_queue_leave(ThreadCache* tc, SuperSlab* ss) noexcept {
  ClassCache& cc = tc->cls[ss->slot];
  // Each take marks every region it finds; each of them is abandoned in turn (their lists
  // are not empty) and clears its mark here: one pass over the queue per exit.
  for (unsigned spins = 0; !ss->dequeued; ++spins) {
    for (SuperSlab* q = queue_take(cc); q;) {
      SuperSlab* next = q->queue_next.load(std::memory_order_relaxed);
      q->dequeued = 1;
      q = next;
    }
    if (!ss->dequeued) wait_pause(spins);
  }
  ss->dequeued = 0;
}

void superslab_free_remote(SuperSlab* ss, void* p, uintptr_t off, const char* call) noexcept {
  Atomic<uint8_t>& st = superslab_state(ss, off);
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
                          superslab_state_reason(ss, off, "double free (block is not allocated)"));
    }
    // Counted before the push, so remote_pending >= the list's length and the owner
    // cannot release the region while this block is still on its way.
    ss->remote_pending.fetch_add(1, std::memory_order_relaxed);
    HAK_MEM_FREED(p, ss->block_size);  // before the push: once pushed the owner may reuse it
    uintptr_t head = ss->remote_head.load(std::memory_order_relaxed);
    while (!(head & kAbandonedTag)) {
      link_set(static_cast<FreeBlock*>(p), reinterpret_cast<FreeBlock*>(head));
      // release: the owner's acquire exchange sees the link written above. acquire: when
      // the list was empty, the 0 read was written by the owner's collection or adoption,
      // after it set the owner that region_queue_push reads.
      if (ss->remote_head.compare_exchange_weak(head, reinterpret_cast<uintptr_t>(p),
                                                std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {
        // This free found the list empty: it queues the region with its owner, whose next
        // collection of the slot then visits it.
        if (head == 0) region_queue_push(ss);
        return;
      }
    }
    // Abandoned: undone (the block is live again to the lock holder), then freed as its
    // owner would, under the orphan lock.
    ss->remote_pending.fetch_sub(1, std::memory_order_relaxed);
    HAK_MEM_ALLOCATED(p, ss->usable());
    st.store(kLive, std::memory_order_relaxed);
    if (superslab_free_abandoned(ss, p, off, call)) return;
  }
}

}  // namespace hak
