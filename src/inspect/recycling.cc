// Region recycling for harnesses (inspect::set_region_recycling): a 2 MiB region that
// hakmem unmaps stays mapped, and the next 2 MiB map takes it back with the pages it had
// touched cleared. A fuzzer builds and tears down a heap for every input (about 90 maps
// and 130 unmaps each); without this it paid the kernel's map, unmap and a page fault per
// touched page every time. A kept region is PROT_NONE until it is handed out again, so an
// access to a released region still crashes the harness as it would have after munmap.
// Decommits still reach the kernel, and os_counts() still counts every map and unmap
// hakmem makes.
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
    if (size == kRegionSize && align == kRegionSize) {
      SpinGuard g(lock_);
      if (count_) {
        void* p = kept_[--count_];
        if (mprotect(p, kRegionSize, PROT_READ | PROT_WRITE) == 0) return clean(p);
        system_os().unmap(p, kRegionSize);  // cannot happen short of ENOMEM: give it back
      }
    }
    return system_os().map(size, align);
  }
  void unmap(void* p, size_t size) override {
    if (size == kRegionSize) {
      SpinGuard g(lock_);
      if (count_ < kMaxKept && mprotect(p, kRegionSize, PROT_NONE) == 0) {
        kept_[count_++] = p;
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
    while (count_) system_os().unmap(kept_[--count_], kRegionSize);
  }

 private:
  static constexpr unsigned kMaxKept = 64;  // 128 MiB of address space at most
  static constexpr size_t kPages = kRegionSize / kPageSize;

  // As fresh from the kernel: zero, and clean for the memory checker. Only resident
  // pages can hold anything; the others read as zero already.
  static void* clean(void* p) {
    HAK_MEM_USABLE(p, kRegionSize);
    unsigned char resident[kPages];
    if (mincore(p, kRegionSize, resident) != 0) {
      memset(p, 0, kRegionSize);
      return p;
    }
    auto* c = static_cast<char*>(p);
    for (size_t i = 0; i < kPages;) {
      if (!(resident[i] & 1)) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < kPages && (resident[j] & 1)) ++j;
      memset(c + i * kPageSize, 0, (j - i) * kPageSize);
      i = j;
    }
    return p;
  }

  SpinLock lock_;
  void* kept_[kMaxKept] = {};
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
