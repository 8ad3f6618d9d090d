#include "large/large.h"

#include <errno.h>

#include <atomic>
#include <cstring>
#include <new>

#include "common/memtool.h"
#include "config/config.h"
#include "os/os.h"
#include "regionmap/region_map.h"

namespace hak {
namespace {

// Freed runs are cached for reuse (docs/DESIGN.md section 6), bounded in number and address
// space; runs above kCacheMaxRun are unmapped at free. 64 slots unmapped a dirty run every
// 400 operations of bench large-churn-256-t2 (its pages faulted in again; commit message).
constexpr unsigned kCacheSlots = 128;
constexpr size_t kCacheMaxBytes = size_t{1} << 30;
constexpr size_t kCacheMaxRun = size_t{32} << 20;
// calloc of a dirty run at least this big gives its pages back rather than clearing them.
constexpr size_t kCallocGiveBackMin = size_t{1} << 20;
// The cached runs' pages kept committed whatever the purge delay, the most recently freed
// first: 4 times the live large blocks' pages, within [kKeepMin, kKeepMax], for kKeepMs.
// The others go back to the OS once unused for purge_delay_ms (0: at free). Measured on bench
// large-churn (commit message): 2 times left one reuse in ten faulting its pages in. At most
// 256 MiB, large-churn-256-t2 (880 MB of live blocks) decommitted 60-75 MB of runs in its
// timed phase on a loaded machine (a slower churn outlives the delay), to fault them in again.
constexpr size_t kKeepFactor = 4;
constexpr size_t kKeepMin = size_t{8} << 20, kKeepMax = size_t{512} << 20;
// Beyond the budget, dirty runs wait out the purge delay while their pages add up to twice
// the budget at most (kKeepMin at least; released class regions are not counted and wait
// it out, as before): a program freeing most of its large blocks at once gives their pages
// back at those frees (the slot limit did so before: with 128 slots and no such bound
// bench large-churn-256 kept 580 MB after freeing everything, 42 MB with 64; once the
// budget bounded it, --ws 16 faulted 22.5K pages in instead of 17.4K).
// The budget's hold: a program that stopped making large blocks gets their pages back
// (the budget kept up to 256 MiB until malloc_trim).
// A churn reuses its runs within milliseconds (bench large-churn: about 10 us an op).
constexpr uint64_t kKeepMs = 1000;
// At most this many cached runs' pages are moved into one new run.
constexpr unsigned kMaxPieces = 4;
// What a system call costs, in bytes of page faults (about 16 faults of 4 KiB pages
// cost what an mremap of a 2 MiB-aligned range does).
constexpr size_t kCallBytes = size_t{64} << 10;
struct CachedRun {
  uintptr_t base;
  size_t bytes;
  // Bytes from base likely resident: the pages the blocks it held asked for (what a
  // program wrote past its requested size is not seen). For fitting and the budget.
  size_t touched;
  uint64_t freed_ms;  // when it (its oldest dirty part) was freed
  // Its pages may be resident and hold old contents (calloc clears them); false once
  // decommitted (or fresh): it reads as zero.
  bool dirty;
  // Bytes from base that may not read zero (0 when clean; the whole run once it held a
  // large block, which may write all its usable bytes; a class region's carved span).
  // Unlike touched, a bound: what a class region taken from the cache clears.
  size_t written;
  // A released class region (never merged): kept committed within the budget the live
  // large blocks make, without its floor, else for purge_delay_ms only. A program's
  // emptied class regions go back as before, after the delay (phase76, stranded).
  bool region;
};

// Beyond any machine's memory (the kernel's overcommit check refuses far less); keeps
// the run arithmetic below from overflowing.
constexpr size_t kLargeMax = size_t{1} << 46;

SpinLock g_lock;
CachedRun g_cache[kCacheSlots];  // oldest first: a freed run goes to the end
unsigned g_cached = 0;
size_t g_keep_max = kKeepMax;  // tests: large_set_keep_committed
std::atomic<uint64_t> g_live, g_mapped_total, g_released_total;
std::atomic<size_t> g_live_touched;  // the live runs' touched bytes

// Cached runs taken out under g_lock, for their system calls after it (another thread
// never waits on a syscall): unmapped, or decommitted and cached again clean.
struct Span {
  uintptr_t base;
  size_t bytes;
};
struct Deferred {
  Span unmap[kCacheSlots + 1], decommit[kCacheSlots];
  unsigned unmaps = 0, decommits = 0;
};

// When the next cached run beyond the budget is due to be decommitted (UINT64_MAX: none):
// a hint for large_purge_due, the purge point of the small paths (relaxed: read without
// the lock; the cache itself is read under it).
std::atomic<uint64_t> g_purge_at{UINT64_MAX};

size_t keep_budget(bool floor = true) {
  size_t b = kKeepFactor * g_live_touched.load(std::memory_order_relaxed);  // a heuristic
  size_t lo = floor ? (kKeepMin < g_keep_max ? kKeepMin : g_keep_max) : 0;
  return b < lo ? lo : b > g_keep_max ? g_keep_max : b;
}

void remove_slot(unsigned i) {
  memmove(&g_cache[i], &g_cache[i + 1], (g_cached - i - 1) * sizeof(CachedRun));
  --g_cached;
}

// Under g_lock. Newest first, dirty runs keep their pages while they fit the budget (for
// kKeepMs at most) or were freed less than purge_delay_ms ago and fit the hold beyond it
// (force: none is kept); the others are taken out to be decommitted. `now`: read before the lock
// (unused with force).
void purge_locked(bool force, uint64_t now, Deferred* d) {
  uint32_t delay = g_config.purge_delay_ms;
  size_t kept = 0, budget = keep_budget(), region_budget = keep_budget(false);
  size_t held = 0, hold_max = 2 * budget > kKeepMin ? 2 * budget : kKeepMin;
  uint64_t next = UINT64_MAX;
  for (unsigned i = g_cached; i-- > 0;) {
    CachedRun& r = g_cache[i];
    if (!r.dirty) continue;
    if (!force) {
      uint64_t age = now > r.freed_ms ? now - r.freed_ms : 0;
      size_t c = r.touched > kPageSize ? r.touched : kPageSize;
      if (age < kKeepMs && kept + c <= (r.region ? region_budget : budget)) {
        kept += c;
        if (r.freed_ms + kKeepMs < next) next = r.freed_ms + kKeepMs;
        continue;
      }
      if (age < delay && (r.region || held + c <= hold_max)) {
        if (!r.region) held += c;
        if (r.freed_ms + delay < next) next = r.freed_ms + delay;
        continue;
      }
    }
    d->decommit[d->decommits++] = {r.base, r.bytes};
    remove_slot(i);
  }
  g_purge_at.store(next, std::memory_order_relaxed);
}

void release_run(uintptr_t base, size_t bytes, size_t touched, bool dirty = true,
                 size_t written = SIZE_MAX, bool region = false);

// After g_lock: the deferred calls.
void finish(Deferred& d) {
  for (unsigned i = 0; i < d.unmaps; ++i) {
    const Span& r = d.unmap[i];
    g_released_total.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    HAK_MEM_USABLE(reinterpret_cast<void*>(r.base), r.bytes);
    os_unmap(reinterpret_cast<void*>(r.base), r.bytes);
  }
  for (unsigned i = 0; i < d.decommits; ++i) {
    const Span& r = d.decommit[i];
    os_decommit(reinterpret_cast<void*>(r.base), r.bytes);
    release_run(r.base, r.bytes, 0, false);
  }
}

// A run [base, base + bytes) to the cache, merged with the cached runs next to it, or
// unmapped (above kCacheMaxRun). The oldest runs are unmapped while the cache holds too
// many (runs without pages first), and the pages beyond the budget purged.
void release_run(uintptr_t base, size_t bytes, size_t touched, bool dirty, size_t written,
                 bool region) {
  if (bytes > kCacheMaxRun) {
    g_released_total.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
    os_unmap(reinterpret_cast<void*>(base), bytes);            // never poisoned: nothing to undo
    return;
  }
  HAK_MEM_NOACCESS(reinterpret_cast<void*>(base), bytes);
  uint64_t now = dirty ? os_now_ms() : 0;
  Deferred d;
  {
    SpinGuard g(g_lock);
    CachedRun run{base,
                  bytes,
                  dirty ? touched : 0,
                  now,
                  dirty,
                  dirty ? (written < bytes ? written : bytes) : 0,
                  region && dirty};
    for (unsigned i = 0; !run.region && i < g_cached;) {
      const CachedRun& r = g_cache[i];
      if (r.region) {
        ++i;
        continue;
      }
      const CachedRun& lo = r.base < run.base ? r : run;
      const CachedRun& hi = r.base < run.base ? run : r;
      // Merged when next to each other and the resident pages stay a prefix.
      if (lo.base + lo.bytes != hi.base || lo.bytes + hi.bytes > kCacheMaxRun ||
          (lo.touched < lo.bytes && hi.touched)) {
        ++i;
        continue;
      }
      size_t t = hi.touched ? lo.bytes + hi.touched : lo.touched;
      run.written = hi.written ? lo.bytes + hi.written : lo.written;
      if (r.dirty && (!run.dirty || r.freed_ms < run.freed_ms)) run.freed_ms = r.freed_ms;
      run.dirty = run.dirty || r.dirty;
      run.touched = t;
      run.base = lo.base;
      run.bytes += r.bytes;
      remove_slot(i);
    }
    size_t total = run.bytes;
    for (unsigned i = 0; i < g_cached; ++i) total += g_cache[i].bytes;
    while (g_cached && (g_cached == kCacheSlots || total > kCacheMaxBytes)) {
      // The run with the fewest resident pages (clean ones: none), the oldest on ties.
      unsigned v = 0;
      for (unsigned i = 1; i < g_cached && g_cache[v].dirty; ++i)
        if (!g_cache[i].dirty || g_cache[i].touched < g_cache[v].touched) v = i;
      total -= g_cache[v].bytes;
      d.unmap[d.unmaps++] = {g_cache[v].base, g_cache[v].bytes};
      remove_slot(v);
    }
    g_cache[g_cached++] = run;
    if (dirty) purge_locked(false, now, &d);
  }
  finish(d);
}

// Moves [from, from + bytes) to `to` (both region-aligned): at once, or a region at a time
// when the range spans mappings (mremap moves within one; runs assembled from moved pages
// span several, at region boundaries). Returns the bytes moved from the start.
size_t move_regions(uintptr_t from, size_t bytes, uintptr_t to) {
  if (os_move(reinterpret_cast<void*>(from), bytes, reinterpret_cast<void*>(to))) return bytes;
  size_t done = 0;
  while (done < bytes && os_move(reinterpret_cast<void*>(from + done), kRegionSize,
                                 reinterpret_cast<void*>(to + done)))
    done += kRegionSize;
  return done;
}

// A fresh run of `bytes` aligned to `align`, or nullptr.
void* map_fresh(size_t bytes, size_t align) {
  void* p = os_map(bytes, align);
  if (p) g_mapped_total.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  return p;
}

struct Piece {
  uintptr_t base;
  size_t bytes, touched, offset;  // moved to the new run's base + offset
};

// Under g_lock: takes the first `bytes` of cached run i out of the cache (the rest stays
// cached, as old as it was).
CachedRun take_prefix(unsigned i, size_t bytes) {
  CachedRun& r = g_cache[i];
  CachedRun head = r;
  if (r.bytes > bytes) {
    head.bytes = bytes;
    head.touched = r.touched < bytes ? r.touched : bytes;
    head.written = r.written < bytes ? r.written : bytes;
    r.base += bytes;
    r.bytes -= bytes;
    r.touched = r.touched > bytes ? r.touched - bytes : 0;
    r.written = r.written > bytes ? r.written - bytes : 0;
  } else {
    remove_slot(i);
  }
  return head;
}

// A run of `bytes` (a multiple of the region size) aligned to `align` for a block whose
// pages up to `want` will be written, or nullptr (ENOMEM). The host is the cached run
// that can hold it (split when bigger: the tail stays cached) whose resident pages fit
// `want` best, else a fresh mapping. When the host lacks pages the block needs, the
// pages of other cached runs are moved into the rest of it (mremap: page tables only,
// no fault), up to kMaxPieces. *dirty: pages may hold old contents; *touched: bytes from
// the base likely resident; *cached: the host run came from the cache (kept inaccessible,
// at most kCacheMaxRun).
void* acquire_run(size_t bytes, size_t align, size_t want, bool* dirty, size_t* touched,
                  bool* cached) {
  Piece pieces[kMaxPieces];
  unsigned npieces = 0;
  uintptr_t host = 0;
  size_t filled = 0;  // the new run's bytes likely resident
  *dirty = false;
  uint64_t now = os_now_ms();
  Deferred d;
  {
    SpinGuard g(g_lock);
    unsigned best = kCacheSlots;
    size_t best_score = SIZE_MAX;
    for (unsigned i = 0; i < g_cached; ++i) {
      const CachedRun& r = g_cache[i];
      if (r.bytes < bytes || (r.base & (align - 1)) != 0) continue;
      // Pages to fault in, plus a sixteenth of the resident pages the block does not need
      // and of the bytes split off a bigger run. Idle pages are not lost (they come back
      // with the block) but tie up what later requests would fault in: counted as much as
      // faults (bench large-churn-256, commit message), the live blocks held 150 MB of
      // them and peak RSS grew 10% past mimalloc's.
      size_t used = r.touched < bytes ? r.touched : bytes;
      size_t score = (want > used ? want - used : (used - want) / 16) + (r.bytes - bytes) / 16;
      if (score < best_score) {
        best = i;
        best_score = score;
      }
    }
    if (best != kCacheSlots) {
      *dirty = g_cache[best].dirty;
      CachedRun h = take_prefix(best, bytes);
      host = h.base;
      filled = h.touched;
    }
    // The rest of the block's pages from other runs, whole regions at a time. A piece
    // not resident to its end would leave a hole that faults: a run gives its fully
    // resident regions (the rest stays cached, its partly resident region first), or all
    // it can hold when resident past what the block wants; only when none gives enough
    // does one with a hole go, as the last piece.
    size_t off = align_up(filled, kRegionSize);
    while (npieces < kMaxPieces && off < want) {
      size_t need = want - off, min_gain = kCallBytes * (host || npieces ? 1 : 4);
      unsigned pick = kCacheSlots;
      size_t gain = 0, take = 0;
      bool holed = false;
      for (unsigned i = 0; i < g_cached; ++i) {
        const CachedRun& r = g_cache[i];
        if (!r.dirty) continue;
        size_t ps = r.bytes < bytes - off ? r.bytes : bytes - off;
        size_t res = r.touched < ps ? r.touched : ps;
        size_t cover = ps < need ? ps : need;
        size_t tk = res >= cover ? ps : res & ~kRegionMask;
        size_t gi = tk < need ? tk : need;
        if (gi > gain) {
          pick = i;
          gain = gi;
          take = tk;
        }
      }
      if (gain < min_gain) {
        pick = kCacheSlots;
        gain = 0;
        for (unsigned i = 0; i < g_cached; ++i) {
          const CachedRun& r = g_cache[i];
          if (!r.dirty) continue;
          size_t ps = r.bytes < bytes - off ? r.bytes : bytes - off;
          size_t gi = r.touched < ps ? r.touched : ps;
          if (gi > need) gi = need;
          if (gi > gain) {
            pick = i;
            gain = gi;
            take = ps;
          }
        }
        holed = true;
      }
      // Worth a call (four for the first into a fresh mapping: it costs the mapping).
      if (pick == kCacheSlots || gain < min_gain) break;
      CachedRun r = take_prefix(pick, take);
      pieces[npieces++] = {r.base, r.bytes, r.touched, off};
      filled = off + r.touched;
      off += r.bytes;
      if (holed) break;
    }
    if (now >= g_purge_at.load(std::memory_order_relaxed)) purge_locked(false, now, &d);
  }
  finish(d);
  // Outside the lock: the host and the pieces are out of the cache.
  *cached = host != 0;
  void* dst = host ? reinterpret_cast<void*>(host) : map_fresh(bytes, align);
  if (!dst) {
    for (unsigned k = 0; k < npieces; ++k)
      release_run(pieces[k].base, pieces[k].bytes, pieces[k].touched);
    return nullptr;
  }
  for (unsigned k = 0; k < npieces; ++k) {
    const Piece& pc = pieces[k];
    HAK_MEM_USABLE(reinterpret_cast<void*>(pc.base), pc.bytes);  // as before an unmap
    size_t moved = move_regions(pc.base, pc.bytes, reinterpret_cast<uintptr_t>(dst) + pc.offset);
    if (moved) {
      g_released_total.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
      *dirty = true;
      // Not *cached: the pieces were made usable at their old place above and a fresh
      // host was never poisoned. Unpoisoning a whole fresh run (up to the commit limit)
      // wrote 1/8 of its size of ASan shadow: 8 GB of shadow after a minute of fuzz_api.
    }
    if (moved < pc.bytes) {  // cannot happen short of ENOMEM: the rest is cached again
      release_run(pc.base + moved, pc.bytes - moved, pc.touched > moved ? pc.touched - moved : 0);
      if (filled > pc.offset + moved) filled = pc.offset + moved;
    }
  }
  *touched = filled;
  return dst;
}

// The region of the user pointer of a run aligned to 2 MiB or more is not the head's; its
// entry is kLargeTail and the word just below it (run memory no block uses) holds the
// head. Every other region of the run keeps kNone: O(1) map entries (and resident map
// pages) per run, and an O(1) head lookup from the user pointer however far it is.
uintptr_t* tail_back_pointer(uintptr_t tail_region) {
  return reinterpret_cast<uintptr_t*>(tail_region) - 1;
}

void map_run(LargeHeader* h) {
  uintptr_t base = reinterpret_cast<uintptr_t>(h);
  region_map_set(base, 1, RegionKind::kLargeHead, RegionKind::kLargeHead);
  uintptr_t user_region = region_base(reinterpret_cast<void*>(base + h->user_off));
  if (user_region != base) {
    *tail_back_pointer(user_region) = base;
    region_map_set(user_region, 1, RegionKind::kLargeTail, RegionKind::kLargeTail);
  }
}

void unmap_run(LargeHeader* h) {
  uintptr_t base = reinterpret_cast<uintptr_t>(h);
  uintptr_t user_region = region_base(reinterpret_cast<void*>(base + h->user_off));
  if (user_region != base) region_map_set(user_region, 1, RegionKind::kNone, RegionKind::kNone);
  region_map_set(base, 1, RegionKind::kNone, RegionKind::kNone);
}

// The head of the run that p's region entry names, or 0.
uintptr_t run_head_of(const void* p) {
  switch (region_kind_of(p)) {
    case RegionKind::kLargeHead:
      return region_base(p);
    case RegionKind::kLargeTail:
      return *tail_back_pointer(region_base(p));
    default:
      return 0;
  }
}

}  // namespace

LargeHeader* large_run_containing(const void* p) noexcept {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  LargeHeader* found = nullptr;
  registry_for_each([&](uintptr_t base) {
    if (region_kind_of(reinterpret_cast<void*>(base)) != RegionKind::kLargeHead) return;
    LargeHeader* h = reinterpret_cast<LargeHeader*>(base);
    if (a >= base && a - base < h->run_bytes) found = h;
  });
  return found;
}

const char* large_bad_reason(const void* p) noexcept {
  if (!large_run_containing(p))
    return "invalid pointer (not allocated by hakmem, or already released)";
  return (reinterpret_cast<uintptr_t>(p) & 15) ? "misaligned pointer"
                                               : "interior pointer (inside a large block)";
}

SpinLock& large_lock() noexcept {
  return g_lock;
}

void* large_malloc(size_t size, size_t align, bool zero) noexcept {
  size_t user_off = align > kPageSize ? align : kPageSize;
  size_t map_align = align > kRegionSize ? align : kRegionSize;
  if (size > kLargeMax || user_off > kLargeMax) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t want = user_off + (size ? size : 1);
  size_t bytes = align_up(want, kRegionSize);
  bool dirty = false;
  size_t touched = 0;
  bool cached = false;
  void* mem = acquire_run(bytes, map_align, want, &dirty, &touched, &cached);
  if (!mem) {
    errno = ENOMEM;
    return nullptr;
  }
  if (cached) HAK_MEM_USABLE(mem, bytes);  // kept inaccessible in the cache
  g_live.fetch_add(1, std::memory_order_relaxed);
  LargeHeader* h = new (mem) LargeHeader();
  h->magic = kLargeMagic;
  h->run_bytes = bytes;
  h->user_off = user_off;
  h->user_bytes = bytes - user_off;
  h->touched = want > touched ? want : touched;
  g_live_touched.fetch_add(h->touched, std::memory_order_relaxed);
  registry_add(&h->link);
  map_run(h);
  HAK_MEM_LARGE_ALLOCATED(static_cast<char*>(mem) + user_off, h->user_bytes);
  char* user = static_cast<char*>(mem) + user_off;
  // Fresh and decommitted runs read as zero; a dirty one holds its last contents (it may
  // be a run reused whole, or a fresh one given pages moved from cached runs). A big
  // calloc gives those pages back instead of clearing them: they read as zero and calloc
  // faults none in, as with a fresh mapping (a memset of a 1 GiB calloc assembled from a
  // few moved MiB made it all resident).
  if (zero && dirty) {
    if (size >= kCallocGiveBackMin)
      os_decommit(user, align_up(size, kPageSize));
    else
      memset(user, 0, size);
  }
  return user;
}

LargeHeader* large_header_of(const void* p) noexcept {
  uintptr_t head = run_head_of(p);
  if (!head) return nullptr;
  LargeHeader* h = reinterpret_cast<LargeHeader*>(head);
  if (h->magic != kLargeMagic || head + h->user_off != reinterpret_cast<uintptr_t>(p))
    return nullptr;
  return h;
}

void large_free(void* p, const char* call) noexcept {
  LargeHeader* h = large_header_of(p);
  if (!h) return report_error(call, p, large_bad_reason(p));
  size_t bytes = h->run_bytes, touched = h->touched;
  uintptr_t base = reinterpret_cast<uintptr_t>(h);
  HAK_MEM_LARGE_FREED(p, h->user_bytes);
  unmap_run(h);
  registry_remove(&h->link);
  h->magic = 0;
  g_live.fetch_sub(1, std::memory_order_relaxed);
  g_live_touched.fetch_sub(touched, std::memory_order_relaxed);
  release_run(base, bytes, touched);
}

void large_shrink(LargeHeader* h, size_t size) noexcept {
  size_t keep = align_up(h->user_off + (size ? size : 1), kRegionSize);
  if (keep >= h->run_bytes) return;
  size_t cut = h->run_bytes - keep;
  {
    // Under the registry lock: stats and large_run_containing read the header there.
    SpinGuard g(registry_lock());
    h->run_bytes = keep;
    h->user_bytes = keep - h->user_off;
    if (h->touched > keep) {
      g_live_touched.fetch_sub(h->touched - keep, std::memory_order_relaxed);
      h->touched = keep;
    }
  }
  // The released regions have no map entry (map_run marks at most the head and the
  // user pointer's region, both below `keep`).
  os_unmap(reinterpret_cast<char*>(h) + keep, cut);
}

void* large_grow(void* p, size_t size) noexcept {
  LargeHeader* h = large_header_of(p);
  size_t user_off = h->user_off, old_bytes = h->run_bytes, old_user = h->user_bytes;
  size_t old_touched = h->touched;
  if (size > kLargeMax) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t bytes = align_up(user_off + size, kRegionSize);
  // The run's base was aligned to max(alignment, region); user_off is max(alignment, page).
  char* dst = static_cast<char*>(os_map(bytes, user_off > kRegionSize ? user_off : kRegionSize));
  if (!dst) {
    errno = ENOMEM;
    return nullptr;
  }
  unmap_run(h);
  registry_remove(&h->link);
  LargeHeader* moved = reinterpret_cast<LargeHeader*>(dst);
  uintptr_t from = reinterpret_cast<uintptr_t>(h);
  size_t done = move_regions(from, old_bytes, reinterpret_cast<uintptr_t>(dst));
  if (done == 0) {  // nothing moved: the block stays where it was
    registry_add(&h->link);
    map_run(h);
    os_unmap(dst, bytes);
    errno = ENOMEM;
    return nullptr;
  }
  g_released_total.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  if (done < old_bytes) {
    // Cannot happen short of ENOMEM: the rest is copied, its regions cached.
    memcpy(dst + done, reinterpret_cast<char*>(from + done), old_bytes - done);
    release_run(from + done, old_bytes - done, 0);
  }
  HAK_MEM_LARGE_FREED(p, old_user);
  moved->run_bytes = bytes;
  moved->user_bytes = bytes - user_off;
  moved->touched = user_off + size;
  g_live_touched.fetch_add(moved->touched, std::memory_order_relaxed);
  g_live_touched.fetch_sub(old_touched, std::memory_order_relaxed);
  registry_add(&moved->link);
  map_run(moved);
  // relaxed: statistics. One run released, one mapped: live is unchanged.
  g_mapped_total.fetch_add(1, std::memory_order_relaxed);
  HAK_MEM_LARGE_ALLOCATED(dst + user_off, moved->user_bytes);
  HAK_MEM_KEPT(dst + user_off, old_user);
  return dst + user_off;
}

LargeCounters large_counters() noexcept {
  SpinGuard g(g_lock);
  return {g_live.load(std::memory_order_relaxed), g_mapped_total.load(std::memory_order_relaxed),
          g_released_total.load(std::memory_order_relaxed), g_cached};
}

void large_purge_due(uint64_t now) noexcept {
  if (now < g_purge_at.load(std::memory_order_relaxed)) return;
  large_purge(false);
}

void large_purge(bool force) noexcept {
  uint64_t now = force ? 0 : os_now_ms();
  Deferred d;
  {
    SpinGuard g(g_lock);
    purge_locked(force, now, &d);
  }
  finish(d);
}

void large_cache_drain() noexcept {
  Deferred d;
  {
    SpinGuard g(g_lock);
    while (g_cached) {
      --g_cached;
      d.unmap[d.unmaps++] = {g_cache[g_cached].base, g_cache[g_cached].bytes};
    }
  }
  finish(d);
}

void large_cache_put_region(void* base, size_t touched, bool keep_pages) noexcept {
  if (!keep_pages) {
    os_decommit(base, touched);
    return release_run(reinterpret_cast<uintptr_t>(base), kRegionSize, 0, false);
  }
  release_run(reinterpret_cast<uintptr_t>(base), kRegionSize, touched, true, touched, true);
}

void* large_cache_take_region(size_t* dirty) noexcept {
  CachedRun h{};
  uint64_t now = os_now_ms();
  Deferred d;
  {
    SpinGuard g(g_lock);
    // A purge point: a run due for its purge goes back before it is taken (it would be
    // cleared and kept resident for a region that may carve a few blocks).
    if (now >= g_purge_at.load(std::memory_order_relaxed)) purge_locked(false, now, &d);
    // As acquire_run scores a run for a block that writes the whole region: the pages to
    // fault in, plus a sixteenth of the bytes split off a bigger run. Newest first on ties.
    unsigned best = kCacheSlots;
    size_t best_score = SIZE_MAX;
    for (unsigned i = g_cached; i-- > 0;) {
      const CachedRun& r = g_cache[i];
      size_t used = r.touched < kRegionSize ? r.touched : kRegionSize;
      size_t score = (kRegionSize - used) + (r.bytes - kRegionSize) / 16;
      if (score < best_score) {
        best = i;
        best_score = score;
      }
    }
    if (best != kCacheSlots) h = take_prefix(best, kRegionSize);
  }
  finish(d);
  if (!h.base) return nullptr;
  // Outside the lock: what a block wrote past the pages it was seen to touch goes back
  // (it reads zero again), so the caller clears at most the touched pages.
  size_t keep = align_up(h.touched, kPageSize);
  if (h.written > keep) {
    os_decommit(reinterpret_cast<void*>(h.base + keep), h.written - keep);
    h.written = keep;
  }
  *dirty = h.written;
  return reinterpret_cast<void*>(h.base);
}

size_t large_set_keep_committed(size_t bytes) noexcept {
  uint64_t now = os_now_ms();
  Deferred d;
  size_t old;
  {
    SpinGuard g(g_lock);
    old = g_keep_max;
    g_keep_max = bytes;
    purge_locked(false, now, &d);
  }
  finish(d);
  return old;
}

}  // namespace hak
