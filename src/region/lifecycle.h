// The region lifecycle (model/SPEC.md section 4): the empty rule and the warm reserve, the
// purge rule, the orphan rule (pool, abandon, adopt) and release, and the collection
// points that apply them. Implemented in lifecycle.cc, in the same order.
#pragma once

#include <cstdint>

#include "common/base.h"

namespace hak {

struct Context;
struct Region;

// --- The purge rule ---
// Purge point: gives back the pages of ctx's warm regions whose delay has passed (all of
// them with `force`). Reads the clock only when a region waits.
void context_purge(Context* ctx, bool force) noexcept;

// --- The empty rule (an owned region: live 0, pending 0) ---
// How a region that became empty is kept warm.
enum class Pages : bool {
  kGiveBack,  // pages given back after the purge delay (at once when it is 0)
  kKeep,      // found empty by a refill's collection: it is about to be carved again
};
// The empty rule for r, owned by ctx, with no live block and no pending remote free:
// kept warm if the reserve has room, else released (its pages to the large-run cache with
// keep_pages, else given back now).
void region_became_empty(Context* ctx, Region* r, Pages pages, bool keep_pages = true) noexcept;
// After a local free found active_local == 0: the empty rule, its common case inline.
void region_check_empty(Context* ctx, Region* r) noexcept;
// A local free pushed on an empty list (the box, or r's spill): a region on the full list
// whose spill starts moves back to the partial list, so refills never walk the full list;
// then the free is counted (active_local), and region_check_empty if that was the last.
void free_list_started(Context* ctx, Region* r) noexcept;
// First live block of a region whose count was zero (it leaves the warm reserve);
// returns p.
void* region_left_empty(Context* ctx, Region* r, void* p) noexcept;

// --- The orphan rule: ownerless regions, under one lock ---
// A region with free space from the abandoned list (adopted) or the warm pool, now owned
// by ctx; nullptr if none.
Region* orphan_take(unsigned slot, Context* ctx) noexcept;
// The exiting owner gives up `r`: released or pooled if empty, else abandoned.
void orphan_abandon(Region* r) noexcept;
// A free into an abandoned region. False if the region was adopted meanwhile (retry).
bool free_abandoned(Region* r, void* p, uintptr_t off, const char* call) noexcept;
SpinLock& orphan_lock() noexcept;
// Purge point of the pool: pooled regions whose delay has passed at `now` (all of them
// with `force`) give their pages back. Takes the lock only when one is due.
void orphan_purge(uint64_t now, bool force) noexcept;
// Releases pool regions beyond the configured reserve (after a config change).
void orphan_trim_pool() noexcept;

// exit(ctx) for its regions (context_exit): released, pooled or abandoned.
void context_leave_regions(Context* ctx) noexcept;

// --- Collection points ---
// hak_collect: takes every remote free back and applies the empty rule; every warm
// region's and pooled region's pages go back, whatever the delay.
void context_collect(Context* ctx) noexcept;
// malloc_trim: collect, then give back every page of ctx's warm regions.
void context_trim(Context* ctx) noexcept;

}  // namespace hak
