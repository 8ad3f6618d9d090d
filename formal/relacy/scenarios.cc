// Relacy scenarios on hakmem's shipped remote-free / collect / abandon / adopt protocol
// (see README.md). Usage: hakmem_relacy SCENARIO [full | bound N | random N]; without a
// scheduler, the scenario's own (the one ctest runs). hakmem_relacy --list: the names. Exit 0:
// every explored execution passed; 1: Relacy found a failing one (printed with its history).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "harness.h"

namespace hak::harness {
namespace {

// One remote free (which queues the region) against the owner's collection point: small
// enough for Relacy's full search (every interleaving, every value each relaxed or acquire
// load may read).
struct RemotePushVsCollect : rl::test_suite<RemotePushVsCollect, 2> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote = Harness::context();
  void* kept = Harness::malloc_as(owner);
  void* freed = Harness::malloc_as(owner);
  Region* r = region_of(kept);

  void thread(unsigned t) {
    if (t == 0)
      context_collect(owner);
    else
      Harness::free_as(remote, freed);
  }
  void after() {
    context_collect(owner);
    RL_ASSERT(r->remote_head.debug_value() == 0);
    check_region(r, owner, {kept});
  }
};

// Two remote frees (free_fast from non-owner contexts: free_remote's push)
// against the owner's collection point (context_collect: the acquire exchange and
// region_collect). The owner keeps one block, so the region never empties. After the
// owner's next collection, each freed block is back on a free list exactly once and the
// counts are exact.
struct RemotePushesVsCollect : rl::test_suite<RemotePushesVsCollect, 3> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote[2] = {Harness::context(), Harness::context()};
  void* kept = Harness::malloc_as(owner);
  void* freed[2] = {Harness::malloc_as(owner), Harness::malloc_as(owner)};
  Region* r = region_of(kept);

  void thread(unsigned t) {
    if (t == 0)
      context_collect(owner);
    else
      Harness::free_as(remote[t - 1], freed[t - 1]);
  }
  void after() {
    context_collect(owner);
    RL_ASSERT(region_of(freed[0]) == r && region_of(freed[1]) == r);
    RL_ASSERT(r->remote_head.debug_value() == 0);
    check_region(r, owner, {kept});
  }
};

// The same races in another geometry: the smallest mid class (1280 B, not a power of two:
// the grid check uses the reciprocal), whose first carve puts 51 blocks in the owner's box.
// The owner frees one locally (into the box) and collects while two remote frees push;
// the four blocks are neighbours, as the 7 blocks of the 256 KiB class are.
struct SmallClassFrees : rl::test_suite<SmallClassFrees, 3> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote[2] = {Harness::context(), Harness::context()};
  void* kept = Harness::malloc_as(owner, kSmallBlockSize);
  void* local = Harness::malloc_as(owner, kSmallBlockSize);
  void* freed[2] = {Harness::malloc_as(owner, kSmallBlockSize),
                    Harness::malloc_as(owner, kSmallBlockSize)};
  Region* r = region_of(kept);

  SmallClassFrees() {
    // Neighbours: their state entries are consecutive (one line in production).
    for (void* p : {local, freed[0], freed[1]}) {
      RL_ASSERT(region_of(p) == r);
      RL_ASSERT(region_block_index(r, reinterpret_cast<uintptr_t>(p) - r->base()) -
                    region_block_index(r, reinterpret_cast<uintptr_t>(kept) - r->base()) <
                4);
    }
  }
  void thread(unsigned t) {
    if (t == 0) {
      Harness::free_as(owner, local);
      context_collect(owner);
    } else {
      Harness::free_as(remote[t - 1], freed[t - 1]);
    }
  }
  void after() {
    context_collect(owner);
    check_region(r, owner, {kept});
  }
};

// The owner frees its last block while two remote frees are in flight, then reaches its
// collection point. The region empties only when the last remote block is collected;
// then the empty rule releases it (W = 0: unmapped) or keeps it warm with its pages given
// back (W = 1: decommit). At that unmap or decommit no block may be held or pending and
// the list must be empty (check_release); a pusher still touching the region afterwards
// hits the poisoned header. After the owner's next collection point the region must be
// released (or warm): the bound for remote frees (model/SPEC.md section 4).
template <unsigned W>
struct ReleaseVsRemoteFrees : rl::test_suite<ReleaseVsRemoteFrees<W>, 3> {
  Harness h{W};
  Context* owner = Harness::context();
  Context* remote[2] = {Harness::context(), Harness::context()};
  void* local = Harness::malloc_as(owner);
  void* freed[2] = {Harness::malloc_as(owner), Harness::malloc_as(owner)};
  Region* r = region_of(local);

  ReleaseVsRemoteFrees() { g_world.on_release = check_release; }
  void thread(unsigned t) {
    if (t == 0) {
      Harness::free_as(owner, local);  // the empty rule may run here ...
      context_collect(owner);          // ... or here
    } else {
      Harness::free_as(remote[t - 1], freed[t - 1]);
    }
  }
  void after() {
    context_collect(owner);
    if (W == 0) {
      RL_ASSERT(g_world.region_unmapped[region_index(r)]);
      RL_ASSERT(g_world.unmaps == 1);
    } else {
      RL_ASSERT(!g_world.region_unmapped[region_index(r)]);
      RL_ASSERT(r->warm);
      RL_ASSERT(owner->slots[kSlot].warm_count == 1);
      check_region(r, owner, {});
    }
  }
};

// The owner exits (context_exit: orphan_abandon closes the list with the tag and
// collects it) while a remote free is in flight and another context refills its box
// (malloc_fast -> context_ensure_slab -> orphan_take adopts the abandoned region, or
// maps a new one if it comes first). The free lands on exactly one path: the owner's
// remote list (collected at abandon or by the adopter), or the locked abandoned path.
// Afterwards the region's books balance for whoever holds it.
struct ExitVsRemoteFreeVsAdopter : rl::test_suite<ExitVsRemoteFreeVsAdopter, 3> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote = Harness::context();
  Context* adopter = Harness::context();
  void* kept = Harness::malloc_as(owner);
  void* freed = Harness::malloc_as(owner);
  Region* r = region_of(kept);
  void* adopter_block = nullptr;

  ExitVsRemoteFreeVsAdopter() { g_world.on_release = check_release; }
  void thread(unsigned t) {
    if (t == 0)
      context_exit(owner);
    else if (t == 1)
      Harness::free_as(remote, freed);
    else
      adopter_block = Harness::malloc_as(adopter);
  }
  void after() {
    RL_ASSERT(adopter_block != nullptr);
    RL_ASSERT(g_world.unmaps == 0);
    if (region_of(adopter_block) == r) {  // adopted
      RL_ASSERT(r->owner.debug_value() == adopter);
      context_collect(adopter);
      RL_ASSERT(r->remote_head.debug_value() == 0);
      check_region(r, adopter, {kept, adopter_block});
    } else {  // the adopter came first and mapped its own region
      RL_ASSERT(r->owner.debug_value() == nullptr);
      RL_ASSERT(r->remote_head.debug_value() == kAbandonedTag);
      RL_ASSERT(r->list == RegionList::kAbandoned);
      check_region(r, nullptr, {kept});
    }
  }
};

// The owner exits while the region's last live block is freed remotely. Whichever comes
// first, the region is released exactly once: by orphan_abandon (the push came first and
// is collected there) or by the locked abandoned free (it saw the tag). W = 0: unmapped;
// check_release holds at the unmap and nothing touches the region afterwards.
struct ExitVsLastRemoteFree : rl::test_suite<ExitVsLastRemoteFree, 2> {
  Harness h{0};
  Context* owner = Harness::context();
  Context* remote = Harness::context();
  void* freed = Harness::malloc_as(owner);
  Region* r = region_of(freed);

  ExitVsLastRemoteFree() { g_world.on_release = check_release; }
  void thread(unsigned t) {
    if (t == 0)
      context_exit(owner);
    else
      Harness::free_as(remote, freed);
  }
  void after() {
    RL_ASSERT(g_world.unmaps == 1);
    RL_ASSERT(g_world.region_unmapped[region_index(r)]);
    for (unsigned c = 0; c < kNumSlots; ++c) RL_ASSERT(!g_abandoned[c] && !g_pool[c]);
  }
};

// Bad input: a block freed by one remote context, then (happens-after: the program hands
// the pointer on with release / acquire) freed again by another, while the owner
// collects. SPEC section 6: the second free is reported and changes nothing else; the
// block is back exactly once.
struct OrderedDoubleFree : rl::test_suite<OrderedDoubleFree, 3> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote[2] = {Harness::context(), Harness::context()};
  void* kept = Harness::malloc_as(owner);
  void* freed = Harness::malloc_as(owner);
  Region* r = region_of(kept);
  Atomic<bool> first_free_done;  // the program's hand-off between the two frees

  OrderedDoubleFree() { g_world.count_errors = true; }
  void thread(unsigned t) {
    if (t == 0) {
      context_collect(owner);
    } else if (t == 1) {
      Harness::as(remote[0], [this] { free_fast(freed, "free"); });
      first_free_done.store(true, std::memory_order_release);
    } else {
      while (!first_free_done.load(std::memory_order_acquire)) spin_wait();
      Harness::as(remote[1], [this] { free_fast(freed, "free"); });
    }
  }
  void after() {
    context_collect(owner);
    RL_ASSERT(g_world.errors == 1);
    check_region(r, owner, {kept});
  }
};

// A refill (malloc_fast with an empty box: context_ensure_slab's collection, which
// visits the slot's region queue only) while two remote frees push into the region; the
// one that finds the list empty queues the region after its block. After the owner's next
// collection point every freed block is back exactly once: no push is lost between the
// list and the queue, and the queue is empty.
struct RefillVsRemoteFrees : rl::test_suite<RefillVsRemoteFrees, 3> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote[2] = {Harness::context(), Harness::context()};
  void* kept = Harness::malloc_as(owner);
  void* freed[2] = {Harness::malloc_as(owner), Harness::malloc_as(owner)};
  Region* r = region_of(kept);
  void* got = nullptr;

  void thread(unsigned t) {
    if (t == 0)
      got = Harness::malloc_as(owner);  // the box is empty: a refill
    else
      Harness::free_as(remote[t - 1], freed[t - 1]);
  }
  void after() {
    context_collect(owner);
    RL_ASSERT(region_of(got) == r);
    check_region(r, owner, {kept, got});
  }
};

// Two regions on the owner's queue. Region A: the owner frees its last local block while
// A's last block is freed remotely (the local free's collection takes A off the queue and
// puts B back, or finds A's push under way); region B: a remote free queues it. Then the
// owner's collection point. A ends warm (W = 1), its pages given back (check_release at
// each decommit); B's books balance; the queue is empty.
constexpr unsigned kBlocksPerRegion = 7;  // of the 256 KiB class (checked below)
struct TwoRegionsQueue : rl::test_suite<TwoRegionsQueue, 3> {
  Harness h{1};
  Context* owner = Harness::context();
  Context* remote[2] = {Harness::context(), Harness::context()};
  void* a[kBlocksPerRegion];
  void* b[2];
  Region* ra = nullptr;
  Region* rb = nullptr;

  TwoRegionsQueue() {
    for (void*& p : a) p = Harness::malloc_as(owner);  // fills region A
    for (void*& p : b) p = Harness::malloc_as(owner);  // region B
    ra = region_of(a[0]);
    rb = region_of(b[0]);
    RL_ASSERT(ra != rb && region_of(a[kBlocksPerRegion - 1]) == ra);
    for (unsigned i = 2; i < kBlocksPerRegion; ++i) Harness::free_as(owner, a[i]);
    g_world.on_release = check_release;
  }
  void thread(unsigned t) {
    if (t == 0) {
      Harness::free_as(owner, a[0]);
      context_collect(owner);
    } else if (t == 1) {
      Harness::free_as(remote[0], a[1]);
    } else {
      Harness::free_as(remote[1], b[1]);
    }
  }
  void after() {
    context_collect(owner);
    RL_ASSERT(!g_world.region_unmapped[region_index(ra)]);
    RL_ASSERT(ra->warm && owner->slots[kSlot].warm_count == 1);
    check_region(ra, owner, {});
    check_region(rb, owner, {b[0]});
  }
};

struct Scenario {
  const char* name;
  bool (*run)(rl::test_params&);
  rl::scheduler_type_e scheduler;
  unsigned bound;  // sched_bound: preemptions per execution
  // false: a finding on the shipped code (README.md, "Findings"): runs by name only; not
  // in --list, so neither ctest nor mutants.sh runs it.
  bool listed = true;
};

template <class T>
bool run(rl::test_params& p) {
  return rl::simulate<T>(p);
}

const Scenario kScenarios[] = {
    {"remote_push_vs_collect", run<RemotePushVsCollect>, rl::sched_full, 0},
    {"remote_pushes_vs_collect", run<RemotePushesVsCollect>, rl::sched_bound, 5},
    {"small_class_frees", run<SmallClassFrees>, rl::sched_bound, 2},
    {"release_vs_remote_frees_w0", run<ReleaseVsRemoteFrees<0>>, rl::sched_bound, 3},
    {"release_vs_remote_frees_w1", run<ReleaseVsRemoteFrees<1>>, rl::sched_bound, 3},
    {"exit_vs_remote_free_vs_adopter", run<ExitVsRemoteFreeVsAdopter>, rl::sched_bound, 3},
    // Its full search passes too (24 million executions, about 95 s): README.md.
    {"exit_vs_last_remote_free", run<ExitVsLastRemoteFree>, rl::sched_bound, 6},
    // Its bound-3 search passes too (5.5 million executions, about 70 s): README.md.
    {"ordered_double_free", run<OrderedDoubleFree>, rl::sched_bound, 2},
    {"refill_vs_remote_frees", run<RefillVsRemoteFrees>, rl::sched_bound, 3},
    {"two_regions_queue", run<TwoRegionsQueue>, rl::sched_bound, 2},
};

const char* scheduler_name(rl::scheduler_type_e s) {
  return s == rl::sched_full ? "full" : s == rl::sched_bound ? "bound" : "random";
}

int usage() {
  std::fprintf(stderr,
               "usage: hakmem_relacy SCENARIO [full | bound N | random N]\n"
               "       hakmem_relacy --list\nscenarios:");
  for (const Scenario& s : kScenarios) std::fprintf(stderr, " %s", s.name);
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace
}  // namespace hak::harness

int main(int argc, char** argv) {
  using namespace hak::harness;
  if (argc < 2) return usage();
  if (std::strcmp(argv[1], "--list") == 0) {
    for (const Scenario& s : kScenarios)
      if (s.listed) std::printf("%s\n", s.name);
    return 0;
  }
  const Scenario* sc = nullptr;
  for (const Scenario& s : kScenarios)
    if (std::strcmp(argv[1], s.name) == 0) sc = &s;
  if (!sc) return usage();

  rl::test_params p;
  p.search_type = sc->scheduler;
  p.context_bound = sc->bound;
  p.iteration_count = 0;
  if (argc >= 3) {
    std::string s = argv[2];
    if (s == "full") {
      p.search_type = rl::sched_full;
    } else if ((s == "bound" || s == "random") && argc >= 4) {
      p.search_type = s == "bound" ? rl::sched_bound : rl::sched_random;
      unsigned long n = std::strtoul(argv[3], nullptr, 10);
      if (s == "bound")
        p.context_bound = static_cast<unsigned>(n);
      else
        p.iteration_count = n;
    } else {
      return usage();
    }
  }
  if (p.search_type == rl::sched_random && p.iteration_count == 0) p.iteration_count = 100000;
  p.execution_depth_limit = 20000;
  std::ostream no_progress(nullptr);  // Relacy's "N% (i/total)" lines: not in the ctest log
  p.progress_stream = &no_progress;

  world_init();
  auto t0 = std::chrono::steady_clock::now();
  bool ok = sc->run(p);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %s, scheduler %s", sc->name, ok ? "passed" : "FAILED",
              scheduler_name(p.search_type));
  if (p.search_type == rl::sched_bound) std::printf(" (context bound %u)", p.context_bound);
  std::printf(", %llu iterations, %.1f s\n", static_cast<unsigned long long>(p.stop_iteration),
              secs);
  return ok ? 0 : 1;
}
