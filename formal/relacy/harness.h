// The Relacy harness: hakmem's shipped protocol code, compiled into this translation unit
// with HAKMEM_RELACY=1 (common/atomic.h turns every protocol atomic into a Relacy atomic,
// every free-block link into a Relacy variable), on a stubbed OS layer.
//
// What is real: src/common/base.cc (SpinLock), src/regionmap/region_map.cc,
// src/tiny/size_class.cc, src/region/region.cc, src/thread/context.cc,
// src/region/lifecycle.cc, src/region/remote.cc and the fast paths of src/front/hot.h (malloc_fast,
// free_fast). What is stubbed here: os_map / os_unmap / os_decommit (an arena mapped once, outside
// the simulation), os_now_ms (standing still), the large-run cache (a released region is unmapped),
// the region registry (a list for inspect; its file's names clash with lifecycle.cc's in one TU),
// the configuration and the error report (a report fails the run, except in a bad-input scenario,
// which counts them), and the slow entry points no scenario reaches.
//
// Relacy runs each simulated thread as a fiber of one OS thread: thread_local variables
// are shared. The fast paths read tl_context once, before their first atomic operation (the
// first point where Relacy may switch threads), so a scenario thread sets tl_context to its
// own context immediately before each call (see Harness::as).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/atomic.h"

// --- the code under test ---
#include "common/base.cc"
#include "region/lifecycle.cc"
#include "region/region.cc"
#include "region/remote.cc"
#include "regionmap/region_map.cc"
#include "thread/context.cc"
#include "tiny/size_class.cc"
// Included after the .cc files: hot.h's inline fast paths.
#include "front/hot.h"

namespace hak {

// --- the stubbed world ---
namespace harness {

// Regions come from one arena, mapped before the simulation (Relacy's heap is per
// iteration). A slot is used once per iteration: an unmapped region stays poisoned, so a
// late access to it is reported rather than landing in a region mapped again.
inline constexpr unsigned kArenaRegions = 4;
inline constexpr unsigned kMaxContexts = 8;
// Zeroed on map (mmap's fresh pages); poisoned on unmap: the header and bitmaps, where
// the handles of the atomics live. Block contents are not modelled (links are Relacy
// variables, user data is not written).
inline constexpr size_t kHeaderBytes = 16 << 10;

struct World {
  char* arena = nullptr;     // kArenaRegions regions, 2 MiB-aligned
  char* contexts = nullptr;  // kMaxContexts pages for Context
  bool region_used[kArenaRegions] = {};
  bool region_unmapped[kArenaRegions] = {};
  unsigned contexts_used = 0;
  unsigned unmaps = 0, decommits = 0;
  // Blocks of each region the program holds: malloc returned them and their free has not
  // started. A region must not be released, nor its pages given back, while this is > 0.
  unsigned held[kArenaRegions] = {};
  // Scenarios of bad input count hakmem's reports instead of failing on the first one.
  bool count_errors = false;
  unsigned errors = 0;
  // The scenario's check at an unmap or a decommit of a region's pages; may fail the run.
  void (*on_release)(Region* r, bool unmap) = nullptr;
};
inline World g_world;

inline unsigned region_index(const void* p) {
  return static_cast<unsigned>((static_cast<const char*>(p) - g_world.arena) >> kRegionShift);
}

// Once per process, outside the simulation.
inline void world_init() {
  g_world.arena = static_cast<char*>(std::aligned_alloc(kRegionSize, kArenaRegions * kRegionSize));
  g_world.contexts = static_cast<char*>(std::aligned_alloc(kPageSize, kMaxContexts * kPageSize));
  if (!g_world.arena || !g_world.contexts) {
    std::fprintf(stderr, "relacy harness: no memory for the arena\n");
    std::exit(2);
  }
}

}  // namespace harness

void* os_map(size_t size, size_t align) noexcept {
  using namespace harness;
  if (size == kRegionSize && align == kRegionSize) {
    for (unsigned i = 0; i < kArenaRegions; ++i) {
      if (g_world.region_used[i]) continue;
      g_world.region_used[i] = true;
      char* r = g_world.arena + (size_t{i} << kRegionShift);
      std::memset(r, 0, kHeaderBytes);
      return r;
    }
    RL_ASSERT(!"arena exhausted: the scenario maps more regions than kArenaRegions");
    return nullptr;
  }
  if (size <= kPageSize && align <= kPageSize && g_world.contexts_used < kMaxContexts) {
    char* c = g_world.contexts + size_t{g_world.contexts_used++} * kPageSize;
    std::memset(c, 0, kPageSize);
    return c;
  }
  RL_ASSERT(!"unexpected os_map request");
  return nullptr;
}

void os_unmap(void* p, size_t size) noexcept {
  using namespace harness;
  RL_ASSERT(size == kRegionSize);
  unsigned i = region_index(p);
  RL_ASSERT(i < kArenaRegions && g_world.region_used[i] && !g_world.region_unmapped[i]);
  if (g_world.on_release) g_world.on_release(static_cast<Region*>(p), true);
  g_world.region_unmapped[i] = true;
  ++g_world.unmaps;
  relacy::g_cells.poison(p, kHeaderBytes);
  relacy::g_cells.forget_plain(p, size, /*unmapped=*/true);
}

void os_decommit(void* p, size_t size) noexcept {
  using namespace harness;
  Region* r = region_of(p);
  if (g_world.on_release) g_world.on_release(r, false);
  ++g_world.decommits;
  // Pages read as zero afterwards: a link there must be written before it is read.
  relacy::g_cells.forget_plain(p, size, /*unmapped=*/false);
}

// The clock stands still: with purge delay 0 (Harness) pages go back when a region
// empties, as the scenarios were written for, and the periodic collection of other slots
// runs at a context's first refill only (the scenarios use one slot). The delayed purge is
// owner-side or under the orphan lock: formal/spin models it.
uint64_t os_now_ms() noexcept {
  return 0;
}

// The region registry serves inspect and the exit report only.
void registry_add(RegionLink*) noexcept {}
void registry_remove(RegionLink*) noexcept {}
SpinLock& registry_lock() noexcept {
  static SpinLock l;
  return l;
}
RegionLink* registry_head() noexcept {
  return nullptr;
}
SpinLock& large_lock() noexcept {
  static SpinLock l;
  return l;
}
// The large-run cache is not simulated: a released region is unmapped at once (what the
// scenarios check: nothing touches it afterwards), a new one always mapped.
void large_cache_put_region(void* base, size_t, bool) noexcept {
  os_unmap(base, kRegionSize);
}
void* large_cache_take_region(size_t*) noexcept {
  return nullptr;
}
void large_purge(bool) noexcept {}

Config g_config;
void ensure_init() noexcept {}
bool is_initialized() noexcept {
  return true;
}
void report_error(const char* call, const void* p, const char* reason) noexcept {
  (void)call;
  (void)p;
  if (harness::g_world.count_errors) {
    ++harness::g_world.errors;
    return;
  }
  RL_ASSERT_IMPL(false, rl::test_result_user_assert_failed, reason, $);
}
void* malloc_large_slow(size_t, bool) noexcept {
  RL_ASSERT(!"malloc_large_slow: no scenario allocates large blocks");
  return nullptr;
}
void free_slow(void*, const char*) noexcept {
  RL_ASSERT(!"free_slow: a scenario freed a pointer outside its regions");
}
void large_purge_due(uint64_t) noexcept {}  // no large runs, no cache
void free_bad_block(Region*, void*, uintptr_t, const char*) noexcept {
  RL_ASSERT(!"free_bad_block: a scenario freed an interior pointer");
}
void free_bad_state(Region*, void*, uintptr_t, const char* call) noexcept {
  report_error(call, nullptr, "double free (free_bad_state)");
}

namespace harness {

// The scenarios' slot: the largest mid class (256 KiB). Its regions hold 7 blocks and
// one bitmap word, so a few blocks already reach every path and checks stay short.
inline constexpr size_t kBlockSize = kMidMax;
inline const unsigned kSlot = size_to_class(kBlockSize);
// The smallest mid class (1280 B), for small_class_frees: 51 blocks per 64 KiB slab.
inline constexpr size_t kSmallBlockSize = 1280;
// The header and the state map of both classes fit in the zeroed part of a region.
static_assert(sizeof(Region) + (kRegionSize / kSmallBlockSize + 1) * kStateEntryBytes + 64 <=
              kHeaderBytes);

// Per iteration: the process's allocator state back to its start (the globals of the
// included .cc files, which live in this TU), the stubs' state, Relacy's cells.
// Constructed first and destroyed last in each scenario (its first member).
struct Harness {
  explicit Harness(unsigned warm_regions) {
    relacy::g_cells.begin();
    World fresh;
    fresh.arena = g_world.arena;
    fresh.contexts = g_world.contexts;
    g_world = fresh;
    for (unsigned c = 0; c < kNumSlots; ++c) {
      g_pool[c] = g_abandoned[c] = nullptr;
      g_pool_count[c] = 0;
    }
    g_registry = g_recycled = nullptr;
    g_next_id = 1;
    new (&g_sentinel) Context();  // constructed afresh: its atomics cannot be copied
    tl_context = &g_sentinel;
    g_pool_purge_at.store(UINT64_MAX, std::memory_order_relaxed);
    g_config = Config();
    g_config.warm_regions = warm_regions;
    g_config.purge_delay_ms = 0;
    g_config.on_error = OnError::kReport;
    g_config.quiet = true;
  }
  ~Harness() { relacy::g_cells.end(); }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  static Context* context() {
    Context* ctx = context_create(ContextKind::kSimulated);
    RL_ASSERT(ctx != nullptr);
    return ctx;
  }
  // Runs `f` as context `ctx`: the fast paths read tl_context before their first atomic (see
  // the top of this file).
  template <class F>
  static decltype(auto) as(Context* ctx, F&& f) {
    tl_context = ctx;
    return f();
  }
  static void* malloc_as(Context* ctx, size_t size = kBlockSize) {
    void* p = as(ctx, [size] { return malloc_fast(size); });
    RL_ASSERT(p != nullptr);
    ++g_world.held[region_index(p)];
    return p;
  }
  static void free_as(Context* ctx, void* p) {
    --g_world.held[region_index(p)];
    as(ctx, [p] { free_fast(p, "free"); });
  }
};

// --- checks, run single-threaded (after()) or at a stub ---

// How many times each block of `r` is on a free list (the context's box for r's slot, the
// region's spill and the slab lists), and whether it was ever carved.
struct RegionCensus {
  static constexpr unsigned kMaxBlocks = kRegionSize / kSmallBlockSize + 1;
  unsigned on_free_lists[kMaxBlocks] = {};
  bool carved[kMaxBlocks] = {};
  unsigned block_count = 0;
};

inline unsigned block_index(const Region* r, const void* p) {
  return static_cast<unsigned>((reinterpret_cast<uintptr_t>(p) - r->base()) / r->block_size);
}

inline RegionCensus census(Region* r, const Context* owner) {
  RegionCensus c;
  c.block_count = r->data_end / r->block_size;
  RL_ASSERT(c.block_count <= RegionCensus::kMaxBlocks);
  auto count = [&](FreeBlock* head) {
    for (FreeBlock* b = head; b; b = link_next(b)) {
      unsigned k = block_index(r, b);
      RL_ASSERT(k < c.block_count && region_of(b) == r);
      // A block twice on the lists would loop: stop at the second sighting.
      if (++c.on_free_lists[k] > 1) return;
    }
  };
  if (owner && owner->slots[r->slot].box_region == r) count(owner->box[r->slot].free);
  count(r->spill);
  // local_head: the box's list in the box's region, else the spill (front/hot.h free_fast).
  if (owner) {
    const Box& box = owner->box[r->slot];
    bool boxed = owner->slots[r->slot].box_region == r;
    const void* want = boxed ? static_cast<const void*>(&box.free) : &r->spill;
    RL_ASSERT(static_cast<const void*>(r->local_head) == want);
    RL_ASSERT(!boxed || r->spill == nullptr);
  }
  for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
    const SlabMeta& m = r->slabs[i];
    count(m.free);
    for (uint32_t k = m.first; k < m.carve_next; ++k) c.carved[k] = true;
  }
  return c;
}

// The region's books balance: `live` (block indices the program holds) are kLive and on no
// free list; every other carved block is kFree and on exactly one free list; no block is
// left kRemote (nothing is pending); the exact count holds.
inline void check_region(Region* r, const Context* owner, std::initializer_list<void*> live) {
  RegionCensus c = census(r, owner);
  bool is_live[RegionCensus::kMaxBlocks] = {};
  for (void* p : live) is_live[block_index(r, p)] = true;
  for (unsigned k = 0; k < c.block_count; ++k) {
    uintptr_t off = uintptr_t{k} * r->block_size;
    if (off < r->data_begin) continue;  // the header's grid positions
    uint8_t state = r->states()[k].debug_value();
    RL_ASSERT(state != kRemote);
    if (is_live[k]) {
      RL_ASSERT(state == kLive);
      RL_ASSERT(c.on_free_lists[k] == 0);
    } else if (c.carved[k]) {
      RL_ASSERT(state == kFree);
      RL_ASSERT(c.on_free_lists[k] == 1);  // back exactly once
    } else {
      RL_ASSERT(state == kFree && c.on_free_lists[k] == 0);
    }
  }
  RL_ASSERT(r->active_local.debug_value() == live.size());
  // Collected: the owner's region queue of the slot is empty too.
  if (owner) RL_ASSERT(owner->slots[r->slot].remote_regions.debug_value() == nullptr);
}

// At a stub unmap or decommit: the program holds no block of the region, no block is
// kRemote (no remote free pending or on its way: active_local counted each until its
// collection), and the remote list is empty or closed (tagged). A push still in flight
// would touch the region after this point: the poisoned header reports it.
inline void check_release(Region* r, bool unmap) {
  (void)unmap;
  RL_ASSERT(g_world.held[region_index(r)] == 0);
  for (unsigned k = 0; k < r->data_end / r->block_size; ++k)
    RL_ASSERT(r->states()[k].debug_value() != kRemote);
  uintptr_t head = r->remote_head.debug_value();
  RL_ASSERT(head == 0 || head == kAbandonedTag);
}

}  // namespace harness
}  // namespace hak
