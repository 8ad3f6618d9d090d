// hak::Atomic<T> for the Relacy checks (HAKMEM_RELACY=1, formal/relacy). Never part of a
// shipped build: there common/atomic.h makes Atomic an alias of std::atomic.
//
// Relacy's atomics must be created and destroyed inside a simulated iteration, while
// hakmem's live in static storage (SpinLock flags) and in mapped memory nobody constructs
// (a Region's state map: zeroed pages). So Atomic<T> is a handle of 8 bytes, the
// size of std::atomic<uint64_t>: the Region header keeps its production layout, and
// the state map's entries are 8 bytes apart (kStateEntryBytes, in the layout arithmetic). It holds
// the iteration it was bound in and the index of its Relacy atomic among this iteration's cells.
//  - Bound in this iteration: that cell.
//  - Bound in an earlier one, or zeroed memory: a fresh cell holding zero, visible to
//    every thread (Relacy's strong init), like static storage or a fresh mapping before
//    the threads run. Every hakmem atomic starts at zero.
//  - A later "iteration": bytes a stub unmap poisoned (kPoisonByte): a use after unmap.
//
// A free block's link is plain memory published by the remote push's release CAS:
// plain_load / plain_store give it a Relacy variable (side table keyed by address), so an
// unordered publish is reported as a data race.
//
// Only the Relacy headers this needs are included: relacy.hpp itself defines macros named
// new, delete, malloc, free, errno, memory_order_relaxed, ... and stdlib/pthread.hpp
// redefines the pthread and errno names; none of that may reach src/.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <vector>

// relacy.hpp's list and order, without stdlib/windows.hpp and stdlib/pthread.hpp.
// clang-format off
#include <relacy/base.hpp>
#include <relacy/context.hpp>
#include <relacy/context_base_impl.hpp>
#include <relacy/backoff.hpp>
#include <relacy/atomic_fence.hpp>
#include <relacy/atomic.hpp>
#include <relacy/var.hpp>
#include <relacy/thread_local.hpp>
#include <relacy/test_suite.hpp>
#include <relacy/dyn_thread.hpp>
#include <relacy/stdlib/mutex.hpp>
#include <relacy/stdlib/condition_variable.hpp>
#include <relacy/stdlib/semaphore.hpp>
#include <relacy/stdlib/event.hpp>
// clang-format on

namespace hak {
namespace relacy {

// The src/ line of an atomic operation, for Relacy's reports. Taken by a defaulted
// argument, so it is the caller's. (std::source_location would do, but clang 14 cannot
// compile libstdc++ 12's.)
struct Where {
  const char* file;
  const char* function;
  unsigned line;
  constexpr Where(const char* f = __builtin_FILE(), const char* fn = __builtin_FUNCTION(),
                  unsigned l = __builtin_LINE())
      : file(f), function(fn), line(l) {}
};

inline rl::debug_info info(const Where& w) {
  return rl::debug_info(w.function, w.file, w.line);
}

inline rl::memory_order order(std::memory_order mo) {
  switch (mo) {
    case std::memory_order_relaxed:
      return rl::mo_relaxed;
    case std::memory_order_consume:
      return rl::mo_consume;
    case std::memory_order_acquire:
      return rl::mo_acquire;
    case std::memory_order_release:
      return rl::mo_release;
    case std::memory_order_acq_rel:
      return rl::mo_acq_rel;
    case std::memory_order_seq_cst:
      break;
  }
  return rl::mo_seq_cst;
}

// Relacy replaces the global operator new with its per-iteration heap (leaks reported
// at the end of each iteration). The tables here outlive iterations: they take their
// memory from malloc itself.
template <class T>
struct MallocAllocator {
  using value_type = T;
  MallocAllocator() = default;
  template <class U>
  MallocAllocator(const MallocAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    void* p = (::malloc)(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { (::free)(p); }
  friend bool operator==(MallocAllocator, MallocAllocator) { return true; }
};

// The byte a stub unmap fills a region with: read as a handle, an iteration from the
// future.
inline constexpr unsigned char kPoisonByte = 0xdd;

// The Relacy objects created in the current iteration. The harness calls begin() in its
// test's constructor and end() in its destructor (Relacy reports atomics and variables
// still alive when an iteration ends as leaks).
class Cells {
 public:
  uint32_t iteration() const { return iteration_; }
  void begin() {
    ++iteration_;
    // Left over only by an iteration a failure cut short (Relacy does not destroy its
    // test then): its cells belong to a finished context and are forgotten, not destroyed.
    cells_.clear();
    plain_.clear();
  }
  void end() {
    for (size_t i = cells_.size(); i-- > 0;) cells_[i].destroy(cells_[i].object);
    cells_.clear();
    plain_.clear();
  }
  template <class C>
  uint32_t make() {
    void* mem = (::malloc)(sizeof(C));
    if (!mem) throw std::bad_alloc();
    cells_.push_back({new (mem) C(), [](void* p) {
                        static_cast<C*>(p)->~C();
                        (::free)(p);
                      }});
    return static_cast<uint32_t>(cells_.size() - 1);
  }
  template <class C>
  C& get(uint32_t index) {
    return *static_cast<C*>(cells_[index].object);
  }

  // The Relacy variable holding the plain word at `addr`.
  template <class T>
  rl::var<T>& plain(const void* addr, const rl::debug_info& where) {
    auto it = plain_.find(addr);
    if (it == plain_.end()) it = plain_.emplace(addr, Plain{make<rl::var<T>>(), false}).first;
    RL_ASSERT_IMPL(!it->second.unmapped, rl::test_result_user_assert_failed,
                   "plain memory used after its region was unmapped", where);
    return get<rl::var<T>>(it->second.index);
  }
  // A stub unmap: [p, p + n) holds kPoisonByte, so each handle there reports its next use.
  void poison(void* p, size_t n) { std::memset(p, kPoisonByte, n); }
  // The plain words in [p, p + n). Unmapped: each later use is reported. Decommitted (the
  // pages read as zero): forgotten, so a read before the next write is reported as a read
  // of uninitialised memory.
  void forget_plain(const void* p, size_t n, bool unmapped) {
    if (unmapped) {
      for (auto& [addr, cell] : plain_)
        if (in(addr, p, n)) cell.unmapped = true;
    } else {
      std::erase_if(plain_, [&](const auto& e) { return !e.second.unmapped && in(e.first, p, n); });
    }
  }

 private:
  struct Cell {
    void* object;
    void (*destroy)(void*);
  };
  struct Plain {
    uint32_t index;
    bool unmapped;
  };
  static bool in(const void* a, const void* p, size_t n) {
    auto x = reinterpret_cast<uintptr_t>(a), b = reinterpret_cast<uintptr_t>(p);
    return x - b < n;
  }
  uint32_t iteration_ = 0;
  std::vector<Cell, MallocAllocator<Cell>> cells_;
  std::unordered_map<const void*, Plain, std::hash<const void*>, std::equal_to<const void*>,
                     MallocAllocator<std::pair<const void* const, Plain>>>
      plain_;
};
inline Cells g_cells;

}  // namespace relacy

template <class T>
class Atomic {
  using Loc = relacy::Where;
  using Cell = rl::generic_atomic<T, true>;  // true: strong init (zero, seen by all)

 public:
  constexpr Atomic() noexcept = default;
  // Every hakmem atomic is initialised to zero; the value is the zero a fresh cell holds.
  constexpr Atomic(T) noexcept {}
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  T load(std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) const {
    return cell(l).load(relacy::order(mo), relacy::info(l));
  }
  void store(T v, std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) {
    cell(l).store(v, relacy::order(mo), relacy::info(l));
  }
  T exchange(T v, std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) {
    return cell(l).exchange(v, relacy::order(mo), relacy::info(l));
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure, Loc l = {}) {
    return cell(l).compare_exchange_weak(expected, desired, relacy::order(success), relacy::info(l),
                                         relacy::order(failure), relacy::info(l));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure, Loc l = {}) {
    return cell(l).compare_exchange_strong(expected, desired, relacy::order(success),
                                           relacy::info(l), relacy::order(failure),
                                           relacy::info(l));
  }
  T fetch_add(T v, std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) {
    return cell(l).fetch_add(v, relacy::order(mo), relacy::info(l));
  }
  T fetch_sub(T v, std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) {
    return cell(l).fetch_sub(v, relacy::order(mo), relacy::info(l));
  }
  T fetch_and(T v, std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) {
    return cell(l).fetch_and(v, relacy::order(mo), relacy::info(l));
  }
  T fetch_or(T v, std::memory_order mo = std::memory_order_seq_cst, Loc l = {}) {
    return cell(l).fetch_or(v, relacy::order(mo), relacy::info(l));
  }
  // The value last stored, for the harness's checks (no scheduling point, no ordering).
  T debug_value(Loc l = {}) const { return cell(l).debug_value(); }

 private:
  Cell& cell(const Loc& l) const {
    uint32_t now = relacy::g_cells.iteration();
    if (iteration_ != now) {
      RL_ASSERT_IMPL(iteration_ < now, rl::test_result_user_assert_failed,
                     "atomic used after its region was unmapped", relacy::info(l));
      index_ = relacy::g_cells.make<Cell>();
      iteration_ = now;
    }
    return relacy::g_cells.get<Cell>(index_);
  }
  mutable uint32_t iteration_ = 0;
  mutable uint32_t index_ = 0;
};
static_assert(sizeof(Atomic<uint64_t>) == sizeof(std::atomic<uint64_t>));

// One round of SpinLock's wait: tells the scheduler this thread spins, so that a full
// search runs the holder instead of unrolling the loop forever.
inline void spin_wait(relacy::Where l = {}) {
  rl::yield(1, relacy::info(l));
}

template <class T>
inline T plain_load(const T* p, relacy::Where l = {}) {
  return relacy::g_cells.plain<T>(p, relacy::info(l))(relacy::info(l)).load();
}
template <class T>
inline void plain_store(T* p, T v, relacy::Where l = {}) {
  relacy::g_cells.plain<T>(p, relacy::info(l))(relacy::info(l)).store(v);
}

}  // namespace hak
