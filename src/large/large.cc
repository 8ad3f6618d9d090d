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

}  // namespace

SpinLock& large_lock() noexcept {
  return g_lock;
}

void* large_malloc(size_t size, size_t align, bool zero) noexcept {
  size_t user_off = align > kPageSize ? align : kPageSize;
  size_t map_align = align > kRegionSize ? align : kRegionSize;
  if (size > (size_t{1} << 46) || user_off > (size_t{1} << 46)) {
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
  region_map_set(reinterpret_cast<uintptr_t>(mem), bytes >> kRegionShift, RegionKind::kLargeHead,
                 RegionKind::kLargeTail);
  HAK_MEM_LARGE_ALLOCATED(static_cast<char*>(mem) + user_off, h->user_bytes);
  char* user = static_cast<char*>(mem) + user_off;
  // Fresh and decommitted runs read as zero; a committed one holds its last contents.
  if (zero && dirty) memset(user, 0, size);
  return user;
}

LargeHeader* large_header_of(const void* p) noexcept {
  uintptr_t head = region_map_large_head(p);
  if (!head) return nullptr;
  LargeHeader* h = reinterpret_cast<LargeHeader*>(head);
  if (h->magic != kLargeMagic || head + h->user_off != reinterpret_cast<uintptr_t>(p))
    return nullptr;
  return h;
}

void large_free(void* p, const char* call) noexcept {
  LargeHeader* h = large_header_of(p);
  if (!h) {
    uintptr_t head = region_map_large_head(p);
    const char* why = (reinterpret_cast<uintptr_t>(p) & 15) ? "misaligned pointer"
                      : head && reinterpret_cast<LargeHeader*>(head)->magic == kLargeMagic
                          ? "interior pointer (inside a large block)"
                          : "invalid pointer";
    return report_error(call, p, why);
  }
  size_t bytes = h->run_bytes;
  uintptr_t base = reinterpret_cast<uintptr_t>(h);
  HAK_MEM_LARGE_FREED(p, h->user_bytes);
  region_map_set(base, bytes >> kRegionShift, RegionKind::kNone, RegionKind::kNone);
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
