// Large objects (above the mid classes, or alignments the classes cannot give): each gets
// its own run of regions. Freed runs are cached (merged with cached neighbours) and
// reused by any request they can hold (split when bigger); their pages stay committed
// within a budget of the most recently freed ones, and go back to the OS once unused
// for purge_delay_ms beyond it (at once past twice as many: docs/DESIGN.md section 6).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/base.h"
#include "regionmap/registry.h"

namespace hak {

inline constexpr uint32_t kLargeMagic = 0x474C4B48;  // "HKLG"

struct LargeHeader {
  uint32_t magic;
  uint32_t pad;
  size_t run_bytes;   // mapped bytes, a multiple of the region size
  size_t user_off;    // the user pointer is base + user_off (>= one page, the header's)
  size_t user_bytes;  // usable bytes from the user pointer
  size_t touched;     // bytes from the base likely resident (the requested size's pages)
  RegionLink link;
};

// nullptr with errno = ENOMEM on failure. `align` is a power of two or 0. `zero`: the
// first `size` bytes read as zero (calloc).
void* large_malloc(size_t size, size_t align, bool zero = false) noexcept;
// realloc in place to `size` (<= h->user_bytes, large): the regions past the run malloc
// would map for `size` are unmapped (shrinking 1 GiB to 513 MiB gives 511 MiB back).
void large_shrink(LargeHeader* h, size_t size) noexcept;
// realloc of the large block p to `size` (> its usable bytes): a new run is mapped and
// the old run's pages are moved into it (mremap, no copy). The new user pointer, or
// nullptr with errno = ENOMEM (p untouched).
void* large_grow(void* p, size_t size) noexcept;
// p resolved to a large run (head or tail kind). Validates, then releases.
void large_free(void* p, const char* call) noexcept;
// The header of the run whose user pointer is p, or nullptr (bad pointer).
LargeHeader* large_header_of(const void* p) noexcept;
// The live run whose mapped bytes contain p, or nullptr. Cold (searches the registry):
// for error messages and inspect, where p's region entry may be kNone.
LargeHeader* large_run_containing(const void* p) noexcept;
// Why p cannot be a large block's user pointer (for report_error).
const char* large_bad_reason(const void* p) noexcept;
SpinLock& large_lock() noexcept;

struct LargeCounters {
  uint64_t live, mapped_total, released_total, cached;
};
LargeCounters large_counters() noexcept;
// Unmaps every cached run (tests: a clean slate).
void large_cache_drain() noexcept;
// Gives back the pages of the cached runs that stayed unused for purge_delay_ms beyond
// the keep-committed budget (what large_malloc and large_free do on their own), or with
// `force` of every cached run now (malloc_trim). The runs stay cached, reading as zero.
void large_purge(bool force) noexcept;
// Class regions (src/region/region.cc) share the cache: a released region (out of the
// region map and the registry) is cached as a dirty run of one region, `touched` bytes
// from its base possibly written (its carved span), under the same budget and delay; may
// unmap it at once (or older runs); without keep_pages its pages go back now (a region
// emptied by a collection, or trimmed: the program may not come back for them). And a run
// of one region taken out of the cache (split off a bigger one), still inaccessible to
// memory checkers, or nullptr (none cached): its bytes past *dirty read zero; the first
// *dirty may hold old contents.
void large_cache_put_region(void* base, size_t touched, bool keep_pages) noexcept;
void* large_cache_take_region(size_t* dirty) noexcept;
// A purge point for the small paths (a box refill): large_purge(false) when a cached run
// beyond the budget is due at `now` (no lock taken otherwise). A program that stops
// making large calls still gets the pages of the runs it freed back after the delay.
void large_purge_due(uint64_t now) noexcept;
// Tests: the bytes of cached runs kept committed whatever the delay. Returns the old value.
size_t large_set_keep_committed(size_t bytes) noexcept;

}  // namespace hak
