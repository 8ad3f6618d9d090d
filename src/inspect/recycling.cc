// Region recycling for harnesses (inspect::set_region_recycling): a run of 2 MiB regions
// (a class region, or a large run) that hakmem unmaps stays mapped, kept as regions in
// address order, and the next map of n regions takes n consecutive ones back. A fuzzer
// builds and tears down a heap for every input (about 90 maps and 130 unmaps each, a few
// hundred with bulk ops); without this it paid the kernel's map and unmap (and the
// trimming of the over-aligned map) every time. A kept run is PROT_NONE until it is handed
// out again, so an access to a released region still crashes the harness as it would
// have after munmap, and its pages are given back when it is kept: it comes back zero, as
// fresh from the kernel. (Keeping the pages and zeroing the resident ones at reuse, found
// by mincore, cost more: a region that a bulk op had filled was zeroed, 2 MiB, and its
// page table walked by both mprotect calls, at every later use, however little that use
// touched; giving the pages back costs a fault per page the next use touches.) Decommits
// still reach the kernel, and os_counts() still counts every map and unmap hakmem makes.
#include <sys/mman.h>

#include "common/base.h"
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
        // No unpoisoning: what hakmem unmaps is usable to the memory checker already
        // (Os::unmap); a 2 MiB unpoison was 5% of fuzz_ops's time.
        if (mprotect(p, size, PROT_READ | PROT_WRITE) == 0) return p;
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
      if (count_ + k <= kMaxKept && madvise(p, size, MADV_DONTNEED) == 0 &&
          mprotect(p, size, PROT_NONE) == 0) {
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
  void decommit(void* p, size_t size) override { system_os().decommit(p, size); }
  bool move(void* from, size_t size, void* to) override { return system_os().move(from, size, to); }

  // Returns every kept region to the kernel.
  void drain() {
    SpinGuard g(lock_);
    while (count_) system_os().unmap(reinterpret_cast<void*>(piece_[--count_]), kRegionSize);
  }

 private:
  static constexpr unsigned kMaxKept = 512;            // 1 GiB of address space at most
  static constexpr size_t kMaxRun = size_t{64} << 20;  // bigger runs go back at once

  static bool keepable(size_t size) { return size % kRegionSize == 0 && size <= kMaxRun; }

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
