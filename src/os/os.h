// The only door to the kernel's memory calls. Production uses the OS; tests install a
// recording implementation that sees every map and unmap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hak {

class Os {
 public:
  virtual ~Os() = default;
  // Maps `size` bytes of fresh zeroed read-write memory aligned to `align` (a power of
  // two >= the page size). Returns nullptr on failure.
  virtual void* map(size_t size, size_t align) = 0;
  // [p, p + size) is usable to the memory checker (hakmem undoes its poisoning first), as
  // a fresh mapping is: an Os may hand the range out again as it is.
  virtual void unmap(void* p, size_t size) = 0;
  // Gives the pages back (RSS drops) but keeps the address range; it reads as zero after.
  virtual void decommit(void* p, size_t size) = 0;
  // Moves the pages of [from, from + size) to `to` (inside a mapping of this Os), with
  // no copy; [from, from + size) is unmapped after. False on failure (nothing changed).
  virtual bool move(void* from, size_t size, void* to) = 0;
};

// The OS itself: mmap / munmap / madvise(MADV_DONTNEED).
Os& system_os() noexcept;

// The implementation in use. Swapping it is for tests, when no region is mapped through
// the previous one that would still be unmapped through it.
Os& os() noexcept;
void set_os(Os* os) noexcept;  // nullptr restores system_os()

struct OsCounters {
  uint64_t maps, unmaps, decommits, bytes_mapped;
};
// Totals of calls made through os() since start, whatever implementation served them.
OsCounters os_counters() noexcept;

// Convenience wrappers that count.
void* os_map(size_t size, size_t align) noexcept;
void os_unmap(void* p, size_t size) noexcept;
void os_decommit(void* p, size_t size) noexcept;
// Which pages of [p, p + size) are resident (mincore: bit 0 of vec[i] for page i; p is
// page-aligned, vec has a byte per page). A query, not a change: no Os call. False if the
// kernel refused (then nothing is known).
bool os_resident(const void* p, size_t size, unsigned char* vec) noexcept;
// Counted as an unmap of `from` (the destination was counted when mapped).
bool os_move(void* from, size_t size, void* to) noexcept;

// Milliseconds of a monotonic clock (CLOCK_MONOTONIC_COARSE: a vDSO read, a few ns, a
// few ms of resolution: enough for purge delays). Read on slow paths only. Tests install
// a manual clock so that delays are deterministic.
uint64_t os_now_ms() noexcept;
// nullptr restores the system clock.
void set_clock(uint64_t (*now_ms)()) noexcept;

}  // namespace hak
