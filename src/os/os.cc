#include "os/os.h"

#include <sys/mman.h>
#include <time.h>

#include <atomic>

#include "common/base.h"
#include "common/memtool.h"

namespace hak {
namespace {

// ASan builds: the shadow pages of a range leaving the process go back to the kernel.
// They read as zero ("addressable") again, as that shadow already does by Os::unmap's
// contract. ASan keeps the shadow of unmapped memory resident, and large runs cached at
// ever new addresses (fuzz_api's huge requests move the kernel's placement) grew it
// without bound: 400 MB after 40 s of fuzz_api, out of memory after 5 minutes.
void forget_shadow([[maybe_unused]] void* p, [[maybe_unused]] size_t size) {
#if defined(HAK_ASAN)
  size_t scale, offset;
  __asan_get_shadow_mapping(&scale, &offset);
  uintptr_t lo = align_up((reinterpret_cast<uintptr_t>(p) >> scale) + offset, kPageSize);
  uintptr_t hi = (((reinterpret_cast<uintptr_t>(p) + size) >> scale) + offset) & ~(kPageSize - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
#endif
}

class SystemOs final : public Os {
 public:
  void* map(size_t size, size_t align) override {
    // Over-map by `align` and trim both ends: the kernel gives no alignment beyond a page.
    if (align <= kPageSize) {
      void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      return p == MAP_FAILED ? nullptr : p;
    }
    size_t span = size + align;
    if (span < size) return nullptr;
    // No MAP_NORESERVE: the kernel's overcommit policy decides, as for glibc's mmap path
    // (which also asks for size + alignment), so a request the machine cannot commit
    // fails here with ENOMEM instead of killing the program when it touches the pages.
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    uintptr_t aligned = (start + align - 1) & ~(uintptr_t{align} - 1);
    if (aligned > start) munmap(raw, aligned - start);
    uintptr_t end = start + span, used_end = aligned + size;
    if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
    return reinterpret_cast<void*>(aligned);
  }
  void unmap(void* p, size_t size) override {
    forget_shadow(p, size);  // first: once unmapped, another thread may map the range
    munmap(p, size);
  }
  void decommit(void* p, size_t size) override { madvise(p, size, MADV_DONTNEED); }
  bool move(void* from, size_t size, void* to) override {
    forget_shadow(from, size);  // reads as it did: zero by Os::unmap's contract
    return mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED;
  }
};

// Constant-initialised (no malloc, no static-init order, no guard) and never destroyed:
// frees arrive after exit handlers have run.
union SystemOsStorage {
  SystemOs os;
  constexpr SystemOsStorage() : os() {}
  ~SystemOsStorage() {}
};
constinit SystemOsStorage g_system;
std::atomic<Os*> g_os{nullptr};
std::atomic<uint64_t> g_maps, g_unmaps, g_decommits, g_bytes_mapped;
std::atomic<uint64_t (*)()> g_clock{nullptr};

}  // namespace

Os& system_os() noexcept {
  return g_system.os;
}

Os& os() noexcept {
  // acquire: pairs with set_os, so a test's recorder is seen fully built.
  Os* o = g_os.load(std::memory_order_acquire);
  return o ? *o : system_os();
}

void set_os(Os* o) noexcept {
  g_os.store(o, std::memory_order_release);
}

OsCounters os_counters() noexcept {
  // relaxed: statistics only.
  return {g_maps.load(std::memory_order_relaxed), g_unmaps.load(std::memory_order_relaxed),
          g_decommits.load(std::memory_order_relaxed),
          g_bytes_mapped.load(std::memory_order_relaxed)};
}

void* os_map(size_t size, size_t align) noexcept {
  void* p = os().map(size, align);
  if (p) {
    g_maps.fetch_add(1, std::memory_order_relaxed);
    g_bytes_mapped.fetch_add(size, std::memory_order_relaxed);
  }
  return p;
}

void os_unmap(void* p, size_t size) noexcept {
  os().unmap(p, size);
  g_unmaps.fetch_add(1, std::memory_order_relaxed);
  g_bytes_mapped.fetch_sub(size, std::memory_order_relaxed);
}

bool os_move(void* from, size_t size, void* to) noexcept {
  if (!os().move(from, size, to)) return false;
  g_unmaps.fetch_add(1, std::memory_order_relaxed);
  g_bytes_mapped.fetch_sub(size, std::memory_order_relaxed);
  return true;
}

bool os_resident(const void* p, size_t size, unsigned char* vec) noexcept {
  return mincore(const_cast<void*>(p), size, vec) == 0;
}

void os_decommit(void* p, size_t size) noexcept {
  os().decommit(p, size);
  g_decommits.fetch_add(1, std::memory_order_relaxed);
}

uint64_t os_now_ms() noexcept {
  // acquire: pairs with set_clock (a test's clock, seen fully set up).
  if (uint64_t(*c)() = g_clock.load(std::memory_order_acquire)) return c();
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void set_clock(uint64_t (*now_ms)()) noexcept {
  g_clock.store(now_ms, std::memory_order_release);
}

}  // namespace hak
