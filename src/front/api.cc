// The malloc family with glibc's semantics (glibc 2.36: results and errno values), as
// the hak_* C API. override.cc forwards the standard names here.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "front/hot.h"
#include "front/memalign_route.h"
#include "hakmem/hakmem.h"
#include "large/large.h"
#include "os/os.h"
#include "stats/stats.h"

namespace hak {
namespace {

// A large block of at least this many bytes grows by moving its pages (mremap); smaller
// ones are copied, which costs about as much as the system calls and uses the cache.
constexpr size_t kMoveMin = size_t{4} << 20;

// Usable bytes of a live block, or 0 after reporting a bad pointer (report mode).
size_t usable_checked(void* p, const char* call) {
  RegionKind k = region_kind_of(p);
  if (is_class_region(k)) {
    Region* r = region_of(p);
    uintptr_t off = reinterpret_cast<uintptr_t>(p) - r->base();
    if (r->magic != kRegionMagic || !region_is_block_start(r, off)) {
      free_bad_block(r, p, off, call);
      return 0;
    }
    if (region_state_of(r, off) != kLive) {
      report_error(call, p, "use after free (block is not allocated)");
      return 0;
    }
    return r->usable();
  }
  if (k == RegionKind::kLargeHead || k == RegionKind::kLargeTail) {
    if (LargeHeader* h = large_header_of(p)) return h->user_bytes;
  }
  report_error(call, p, large_bad_reason(p));
  return 0;
}

// glibc's memalign; where the request goes is arith::memalign_route. Out of line: one copy
// for the five aligned entry points.
HAK_NOINLINE void* memalign_glibc(size_t align, size_t size) {
  arith::MemalignRoute<NativeWord> r = arith::memalign_route<NativeWord>(align, size);
  if (HAK_LIKELY(r.kind == arith::kRouteMalloc)) return malloc_fast(r.size);
  if (r.kind == arith::kRouteLarge) return large_malloc(r.size, r.align);
  errno = r.kind == arith::kRouteEinval ? EINVAL : ENOMEM;
  return nullptr;
}

}  // namespace

void* malloc_large_slow(size_t size, bool zero) noexcept {
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  ensure_init();
  return large_malloc(size, 0, zero);
}

void free_slow(void* p, const char* call) noexcept {
  if (!p) return;
  RegionKind k = region_kind_of(p);
  if (k == RegionKind::kLargeHead || k == RegionKind::kLargeTail) return large_free(p, call);
  // Most regions of a large run have no map entry (large.cc): the reason says which.
  report_error(call, p, large_bad_reason(p));
}

void free_bad_block(Region* r, void* p, uintptr_t off, const char* call) noexcept {
  report_error(call, p,
               r->magic != kRegionMagic ? "invalid pointer (corrupt region header)"
                                        : region_bad_reason(r, off));
}

void free_bad_state(Region* r, void* p, uintptr_t off, const char* call) noexcept {
  report_error(call, p, region_state_reason(r, off, "double free (block is not allocated)"));
}

}  // namespace hak

using namespace hak;

extern "C" {

void* hak_malloc(size_t size) {
  return malloc_fast(size);
}

void hak_free(void* p) {
  free_fast(p, "free");
}

void* hak_calloc(size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (bytes > kMidMax) {
    // Large runs are zero from the kernel (fresh or decommitted); large_malloc clears a
    // cached run that kept its pages.
    void* p = malloc_large_slow(bytes, true);
    if (p) HAK_MEM_ZEROED(p, bytes);
    return p;
  }
  // Blocks of a page or more: calloc_mid leaves fresh pages untouched. Smaller ones are
  // cleared (a carve batch touches their pages anyway).
  if (bytes > kTinyMax) {
    unsigned c = size_to_class(bytes);
    if (class_size(c) >= kPageSize) return calloc_mid(c, bytes);
  }
  void* p = malloc_fast(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

void* hak_realloc(void* p, size_t size) {
  if (!p) return malloc_fast(size);
  if (size == 0) {
    free_fast(p, "realloc");
    return nullptr;
  }
  size_t usable = usable_checked(p, "realloc");
  if (usable == 0) {
    errno = EINVAL;
    return nullptr;
  }
  RegionKind k = region_kind_of(p);
  bool large = k == RegionKind::kLargeHead || k == RegionKind::kLargeTail;
  if (large && size > usable && usable >= kMoveMin) {
    if (size > kMaxRequest) {
      errno = ENOMEM;
      return nullptr;
    }
    return large_grow(p, size);  // the pages move, nothing is copied
  }
  if (size <= usable) {
    if (large) {
      if (size > kMidMax) {
        large_shrink(large_header_of(p), size);
        return p;
      }
    } else if (class_size(size_to_class(size)) >= usable / 2) {
      // The block malloc(size) would give is at least half of p's: moving saves little
      // (8 -> 3 bytes stays; 256 KiB -> 1000 bytes moves).
      return p;
    }
  }
  void* q = malloc_fast(size);
  if (!q) return nullptr;  // errno set; p untouched
  memcpy(q, p, size < usable ? size : usable);
  free_fast(p, "realloc");
  return q;
}

void* hak_reallocarray(void* p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return hak_realloc(p, bytes);
}

int hak_posix_memalign(void** out, size_t align, size_t size) {
  if (align % sizeof(void*) != 0 || !is_pow2(align / sizeof(void*))) return EINVAL;
  int saved = errno;
  void* p = memalign_glibc(align, size);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

void* hak_aligned_alloc(size_t align, size_t size) {
  return memalign_glibc(align, size);
}

void* hak_memalign(size_t align, size_t size) {
  return memalign_glibc(align, size);
}

void* hak_valloc(size_t size) {
  return memalign_glibc(kPageSize, size);
}

void* hak_pvalloc(size_t size) {
  if (size > SIZE_MAX - 2 * kPageSize - 32) {
    errno = ENOMEM;
    return nullptr;
  }
  return memalign_glibc(kPageSize, align_up(size, kPageSize));
}

size_t hak_malloc_usable_size(void* p) {
  if (!p) return 0;
  return usable_checked(p, "malloc_usable_size");
}

// C23: `size` (and `align`) are what the block was requested with, so the size is at most
// the block's usable size and the block is aligned to `align`: anything else is the
// caller's bug, reported like any bad free, and the block is not freed.
void hak_free_sized(void* p, size_t size) {
  if (!p) return;
  size_t usable = usable_checked(p, "free_sized");
  if (usable == 0) return;  // reported
  if (size > usable) return report_error("free_sized", p, "size larger than the block");
  free_fast(p, "free_sized");
}

void hak_free_aligned_sized(void* p, size_t align, size_t size) {
  if (!p) return;
  size_t usable = usable_checked(p, "free_aligned_sized");
  if (usable == 0) return;  // reported
  if (size > usable) return report_error("free_aligned_sized", p, "size larger than the block");
  if (!is_pow2(align) || (reinterpret_cast<uintptr_t>(p) & (align - 1)))
    return report_error("free_aligned_sized", p, "block not aligned to the given alignment");
  free_fast(p, "free_aligned_sized");
}

int hak_malloc_trim(size_t) {
  OsCounters before = os_counters();
  Context* ctx = tl_context;
  if (ctx != &g_sentinel) context_trim(ctx);
  orphan_purge(0, true);
  // Last: the class regions released above are cached too. Cached runs give their pages
  // back (their address space stays).
  large_purge(true);
  // Other threads' warm regions are theirs to trim (no lock covers them).
  OsCounters after = os_counters();
  return after.unmaps != before.unmaps || after.decommits != before.decommits;
}

void hak_collect(void) {
  Context* ctx = tl_context;
  if (ctx != &g_sentinel) context_collect(ctx);
  large_purge(true);  // and the cached large runs' pages, whatever the delay (README)
}

void hak_stats_print(int fd) {
  stats_print(fd);
}

unsigned long long hak_error_count(void) {
  return error_count();
}

}  // extern "C"
