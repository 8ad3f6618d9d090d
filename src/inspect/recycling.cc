// Region recycling for harnesses (inspect::set_region_recycling): a run of 2 MiB regions
// (a class region, or a large run) that hakmem unmaps stays mapped, kept as regions in
// address order, and the next map of n regions takes n consecutive ones back with the pages
// they had touched cleared. A fuzzer builds and
// tears down a heap for every input (about 90 maps and 130 unmaps each, up to a few
// hundred for the bulk ops); without this it paid the kernel's map, unmap and a page
// fault per touched page every time. A kept run is PROT_NONE until it is handed out
// again, so an access to a released region still crashes the harness as it would have
// after munmap. A decommit zeroes the resident pages of the range instead of dropping
// them: the range reads as zero after, as the Os contract says, and the next use of those
// pages costs no fault (the RSS stays; recycling is for harnesses). os_counts() still
// counts every map, unmap and decommit hakmem makes.
#include <sys/mman.h>

#include <cstring>

#include "common/base.h"
#include "common/memtool.h"
#include "hakmem/inspect.h"
#include "os/os.h"

namespace hakmem::inspect {

using namespace hak;
namespace {

class RecyclingOs final : public Os {
 public:
  void* map(size_t size, size_t align) override {
    if (keepable(size) && align <= kRegionSize) {
      size_t k = size / kRegionSize;
      SpinGuard g(lock_);
      // k consecutive kept regions (sorted and distinct: the first and the last are
      // k - 1 regions apart), the highest addresses first.
      for (size_t last = count_; last >= k && last > 0; --last) {
        size_t first = last - k;
        if (piece_[last - 1] - piece_[first] != (k - 1) * kRegionSize) continue;
        void* p = reinterpret_cast<void*>(piece_[first]);
        for (size_t i = last; i < count_; ++i) piece_[i - k] = piece_[i];
        count_ -= static_cast<unsigned>(k);
        if (mprotect(p, size, PROT_READ | PROT_WRITE) == 0) {
          clean(p, size, true);
          return p;
        }
        system_os().unmap(p, size);  // cannot happen short of ENOMEM: give it back
        break;
      }
    }
    return system_os().map(size, align);
  }
  void unmap(void* p, size_t size) override {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (keepable(size) && a % kRegionSize == 0) {
      size_t k = size / kRegionSize;
      SpinGuard g(lock_);
      if (count_ + k <= kMaxKept && mprotect(p, size, PROT_NONE) == 0) {
        // Kept as k regions, in address order.
        size_t at = count_;
        while (at > 0 && piece_[at - 1] > a) --at;
        for (size_t i = count_; i-- > at;) piece_[i + k] = piece_[i];
        for (size_t i = 0; i < k; ++i) piece_[at + i] = a + i * kRegionSize;
        count_ += static_cast<unsigned>(k);
        return;
      }
    }
    system_os().unmap(p, size);
  }
  void decommit(void* p, size_t size) override {
#if defined(HAKMEM_VALGRIND)
    system_os().decommit(p, size);  // memcheck would see the zeroing as a write
#else
    clean(p, size, false);
#endif
  }
  bool move(void* from, size_t size, void* to) override {
    return system_os().move(from, size, to);
  }

  // Returns every kept region to the kernel.
  void drain() {
    SpinGuard g(lock_);
    while (count_) system_os().unmap(reinterpret_cast<void*>(piece_[--count_]), kRegionSize);
  }

 private:
  static constexpr unsigned kMaxKept = 512;            // 1 GiB of address space at most
  static constexpr size_t kMaxRun = size_t{64} << 20;  // bigger runs go back at once

  static bool keepable(size_t size) {
    return size % kRegionSize == 0 && size <= kMaxRun;
  }

  // Zeroes [p, p + n) (page-aligned) without the memory checker: the range may hold
  // bytes the checker says are not accessible (a decommit keeps the shadow as it is).
  HAK_NO_ASAN static void zero(void* p, size_t n) {
    asm volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(0) : "memory");
  }

  // As fresh from the kernel: zero (and, for a map, clean for the memory checker). Only
  // resident pages can hold anything; the others read as zero already.
  static void clean(void* p, size_t size, bool fresh) {
    if (fresh) HAK_MEM_USABLE(p, size);
    auto* c = static_cast<char*>(p);
    constexpr size_t kChunk = kRegionSize;
    unsigned char resident[kChunk / kPageSize];
    for (size_t off = 0; off < size; off += kChunk) {
      size_t len = size - off < kChunk ? size - off : kChunk;
      size_t pages = (len + kPageSize - 1) / kPageSize;
      if (mincore(c + off, len, resident) != 0) {
        zero(c + off, len);
        continue;
      }
      for (size_t i = 0; i < pages;) {
        if (!(resident[i] & 1)) {
          ++i;
          continue;
        }
        size_t j = i;
        while (j < pages && (resident[j] & 1)) ++j;
        size_t to = j * kPageSize < len ? j * kPageSize : len;
        zero(c + off + i * kPageSize, to - i * kPageSize);
        i = j;
      }
    }
  }

  SpinLock lock_;
  uintptr_t piece_[kMaxKept] = {};  // kept regions, sorted by address
  unsigned count_ = 0;
};

RecyclingOs g_recycling;

}  // namespace

void set_region_recycling(bool on) {
  if (on) {
    set_os(&g_recycling);
  } else {
    set_os(nullptr);
    g_recycling.drain();
  }
}

}  // namespace hakmem::inspect
