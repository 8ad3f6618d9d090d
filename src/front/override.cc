// The standard names, for LD_PRELOAD (libhakmem.so) and static linking (libhakmem.a).
// malloc and free carry the fast paths themselves (no call into hak_malloc / hak_free).
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>

#include "front/hot.h"
#include "hakmem/hakmem.h"
#include "stats/stats.h"

#define HAK_EXPORT extern "C" __attribute__((visibility("default")))

HAK_EXPORT void* malloc(size_t size) {
  return hak::malloc_fast(size);
}
HAK_EXPORT void free(void* p) {
  hak::free_fast(p, "free");
}
HAK_EXPORT void cfree(void* p) {
  hak::free_fast(p, "free");
}
HAK_EXPORT void* calloc(size_t n, size_t size) {
  return hak_calloc(n, size);
}
HAK_EXPORT void* realloc(void* p, size_t size) {
  return hak_realloc(p, size);
}
HAK_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  return hak_reallocarray(p, n, size);
}
HAK_EXPORT int posix_memalign(void** out, size_t align, size_t size) {
  return hak_posix_memalign(out, align, size);
}
HAK_EXPORT void* aligned_alloc(size_t align, size_t size) {
  return hak_aligned_alloc(align, size);
}
HAK_EXPORT void* memalign(size_t align, size_t size) {
  return hak_memalign(align, size);
}
HAK_EXPORT void* valloc(size_t size) {
  return hak_valloc(size);
}
HAK_EXPORT void* pvalloc(size_t size) {
  return hak_pvalloc(size);
}
HAK_EXPORT size_t malloc_usable_size(void* p) {
  return hak_malloc_usable_size(p);
}
HAK_EXPORT void free_sized(void* p, size_t size) {
  hak_free_sized(p, size);
}
HAK_EXPORT void free_aligned_sized(void* p, size_t align, size_t size) {
  hak_free_aligned_sized(p, align, size);
}

// glibc's other names for the same functions: code that calls them (to reach "the real
// malloc" under an interposer) must get hakmem's blocks, which hakmem's free accepts.
HAK_EXPORT void* __libc_malloc(size_t size) {
  return hak::malloc_fast(size);
}
HAK_EXPORT void __libc_free(void* p) {
  hak::free_fast(p, "free");
}
HAK_EXPORT void* __libc_calloc(size_t n, size_t size) {
  return hak_calloc(n, size);
}
HAK_EXPORT void* __libc_realloc(void* p, size_t size) {
  return hak_realloc(p, size);
}
HAK_EXPORT void* __libc_memalign(size_t align, size_t size) {
  return hak_memalign(align, size);
}
HAK_EXPORT void* __libc_valloc(size_t size) {
  return hak_valloc(size);
}
HAK_EXPORT void* __libc_pvalloc(size_t size) {
  return hak_pvalloc(size);
}

// Introspection: hakmem's figures in glibc's shapes (glibc's own would describe its idle
// arena).
HAK_EXPORT int malloc_trim(size_t pad) {
  return hak_malloc_trim(pad);
}

namespace {

struct mallinfo2 mallinfo_of(const hak::StatsSnapshot& s) {
  struct mallinfo2 m = {};
  m.arena = s.bytes_mapped;  // everything hakmem has mapped
  m.hblks = s.large_live;
  m.hblkhd = s.large_bytes;
  m.uordblks = s.bytes_in_blocks;
  m.fordblks = s.bytes_mapped > s.bytes_in_blocks ? s.bytes_mapped - s.bytes_in_blocks : 0;
  return m;
}

}  // namespace

HAK_EXPORT struct mallinfo2 mallinfo2(void) {
  return mallinfo_of(hak::stats_snapshot());
}

// The old interface: int fields, saturated rather than wrapped.
HAK_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  auto clamp = [](size_t v) { return v > INT_MAX ? INT_MAX : static_cast<int>(v); };
  struct mallinfo m = {};
  m.arena = clamp(m2.arena);
  m.hblks = clamp(m2.hblks);
  m.hblkhd = clamp(m2.hblkhd);
  m.uordblks = clamp(m2.uordblks);
  m.fordblks = clamp(m2.fordblks);
  return m;
}

HAK_EXPORT void malloc_stats(void) {
  hak::stats_print(hak::stats_fd());
}

// glibc 2.36's XML shape: one heap, then the totals.
HAK_EXPORT int malloc_info(int options, FILE* fp) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  struct mallinfo2 m = mallinfo_of(hak::stats_snapshot());
  size_t system = m.arena;
  fprintf(fp,
          "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n"
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</heap>\n"
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
          "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</malloc>\n",
          m.fordblks, system, system, system, system, m.fordblks, m.hblks, m.hblkhd, system, system,
          system, system);
  return 0;
}
