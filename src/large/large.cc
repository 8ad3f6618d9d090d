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

// Kept runs: bounded in number and bytes, so a free-all returns nearly everything.
constexpr unsigned kCacheSlots = 8;
constexpr size_t kCacheMaxBytes = size_t{64} << 20;
constexpr size_t kCacheMaxRun = size_t{32} << 20;
// Of those, the first 8 MiB keep their pages: a program that frees and allocates a large
// block in a loop (python3 growing and dropping lists: 376 runs of 2 MiB in
// bench/alloc_heavy.py) faulted every page in again at each reuse. The rest is
// decommitted at free.
constexpr size_t kCacheCommittedMax = size_t{8} << 20;

struct CachedRun {
  uintptr_t base;
  size_t bytes;
  bool committed;  // pages kept (their old contents too): calloc must clear them
};

// Beyond any machine's memory (the kernel's overcommit check refuses far less); keeps
// the run arithmetic below from overflowing.
constexpr size_t kLargeMax = size_t{1} << 46;

SpinLock g_lock;
CachedRun g_cache[kCacheSlots];
unsigned g_cached = 0;
size_t g_cached_bytes = 0;
size_t g_committed_bytes = 0;
std::atomic<uint64_t> g_live, g_mapped_total, g_released_total;

void* take_cached(size_t bytes, size_t align, bool* committed) {
  SpinGuard g(g_lock);
  for (unsigned i = 0; i < g_cached; ++i) {
    if (g_cache[i].bytes == bytes && (g_cache[i].base & (align - 1)) == 0) {
      uintptr_t b = g_cache[i].base;
      *committed = g_cache[i].committed;
      if (*committed) g_committed_bytes -= bytes;
      g_cache[i] = g_cache[--g_cached];
      g_cached_bytes -= bytes;
      return reinterpret_cast<void*>(b);
    }
  }
  return nullptr;
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
  size_t bytes = align_up(user_off + (size ? size : 1), kRegionSize);
  bool dirty = false;
  void* mem = take_cached(bytes, map_align, &dirty);
  if (mem) HAK_MEM_USABLE(mem, bytes);  // a cached run was kept inaccessible (<= 32 MiB)
  if (!mem) {
    mem = os_map(bytes, map_align);
    if (!mem) {
      errno = ENOMEM;
      return nullptr;
    }
    g_mapped_total.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  }
  g_live.fetch_add(1, std::memory_order_relaxed);
  LargeHeader* h = new (mem) LargeHeader();
  h->magic = kLargeMagic;
  h->run_bytes = bytes;
  h->user_off = user_off;
  h->user_bytes = bytes - user_off;
  registry_add(&h->link);
  map_run(h);
  HAK_MEM_LARGE_ALLOCATED(static_cast<char*>(mem) + user_off, h->user_bytes);
  char* user = static_cast<char*>(mem) + user_off;
  // Fresh and decommitted runs read as zero; a committed one holds its last contents.
  if (zero && dirty) memset(user, 0, size);
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
  size_t bytes = h->run_bytes;
  uintptr_t base = reinterpret_cast<uintptr_t>(h);
  HAK_MEM_LARGE_FREED(p, h->user_bytes);
  unmap_run(h);
  registry_remove(&h->link);
  h->magic = 0;
  g_live.fetch_sub(1, std::memory_order_relaxed);
  if (bytes <= kCacheMaxRun) {
    SpinGuard g(g_lock);
    if (g_cached < kCacheSlots && g_cached_bytes + bytes <= kCacheMaxBytes) {
      bool keep = g_committed_bytes + bytes <= kCacheCommittedMax;
      if (keep)
        g_committed_bytes += bytes;
      else
        os_decommit(h, bytes);
      HAK_MEM_NOACCESS(h, bytes);
      g_cache[g_cached++] = {base, bytes, keep};
      g_cached_bytes += bytes;
      return;
    }
  }
  g_released_total.fetch_add(1, std::memory_order_relaxed);
  os_unmap(h, bytes);  // never poisoned: nothing to undo in the shadow
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
  }
  // The released regions have no map entry (map_run marks at most the head and the
  // user pointer's region, both below `keep`).
  os_unmap(reinterpret_cast<char*>(h) + keep, cut);
}

void* large_grow(void* p, size_t size) noexcept {
  LargeHeader* h = large_header_of(p);
  size_t user_off = h->user_off, old_bytes = h->run_bytes, old_user = h->user_bytes;
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
  if (!os_move(h, old_bytes, dst)) {  // nothing moved: the block stays where it was
    registry_add(&h->link);
    map_run(h);
    os_unmap(dst, bytes);
    errno = ENOMEM;
    return nullptr;
  }
  HAK_MEM_LARGE_FREED(p, old_user);
  LargeHeader* moved = reinterpret_cast<LargeHeader*>(dst);
  moved->run_bytes = bytes;
  moved->user_bytes = bytes - user_off;
  registry_add(&moved->link);
  map_run(moved);
  // relaxed: statistics. One run released, one mapped: live is unchanged.
  g_mapped_total.fetch_add(1, std::memory_order_relaxed);
  g_released_total.fetch_add(1, std::memory_order_relaxed);
  HAK_MEM_LARGE_ALLOCATED(dst + user_off, moved->user_bytes);
  HAK_MEM_KEPT(dst + user_off, old_user);
  return dst + user_off;
}

LargeCounters large_counters() noexcept {
  SpinGuard g(g_lock);
  return {g_live.load(std::memory_order_relaxed), g_mapped_total.load(std::memory_order_relaxed),
          g_released_total.load(std::memory_order_relaxed), g_cached};
}

void large_cache_drain() noexcept {
  SpinGuard g(g_lock);
  while (g_cached) {
    CachedRun r = g_cache[--g_cached];
    g_cached_bytes -= r.bytes;
    if (r.committed) g_committed_bytes -= r.bytes;
    g_released_total.fetch_add(1, std::memory_order_relaxed);
    HAK_MEM_USABLE(reinterpret_cast<void*>(r.base), r.bytes);
    os_unmap(reinterpret_cast<void*>(r.base), r.bytes);
  }
}

}  // namespace hak
