// OwnerCount: a 32-bit count that one thread writes at a time (a region's owner, or the
// holder of the orphan lock for a region without one) and any thread may read: a
// region's active_local (src/region/region.h).
//
// Its owner's +1 and -1, on every malloc and free, are one read-modify-write instruction
// each, which also sets the flag the fast path branches on (the count was 0 / is 0 now):
// with a relaxed atomic load and store they took five (compilers never fuse atomic
// accesses into a memory operand). The instruction is not locked: one writer at a time,
// so a read-modify-write is as good as a load and a store, and readers see the old value
// or the new one (an aligned 32-bit store). The value is kept negated so that both tests
// are a single flag: -count - 1 borrows exactly when count was 0, and -count + 1 is zero
// exactly when count becomes 0.
//
// The writes are inline assembly, so ThreadSanitizer does not see them (the readers'
// relaxed loads it sees raise nothing either); the Relacy checks (HAKMEM_RELACY) model
// the count as a relaxed atomic load and store instead, so they see every write.
#pragma once

#include <cstdint>

#include "common/atomic.h"
#include "common/base.h"

namespace hak {

#if HAKMEM_RELACY

class OwnerCount {
 public:
  uint32_t load() const { return n_.load(std::memory_order_relaxed); }
  void store(uint32_t n) { n_.store(n, std::memory_order_relaxed); }
  bool increment_was_zero() {
    uint32_t a = n_.load(std::memory_order_relaxed);
    n_.store(a + 1, std::memory_order_relaxed);
    return a == 0;
  }
  bool decrement_is_zero() {
    uint32_t a = n_.load(std::memory_order_relaxed) - 1;
    n_.store(a, std::memory_order_relaxed);
    return a == 0;
  }
  uint32_t debug_value() const { return n_.debug_value(); }

 private:
  Atomic<uint32_t> n_;
};

#else

class OwnerCount {
 public:
  // relaxed: a value; exact for the writer, a snapshot for anyone else.
  uint32_t load() const { return 0u - __atomic_load_n(&neg_, __ATOMIC_RELAXED); }
  void store(uint32_t n) { __atomic_store_n(&neg_, 0u - n, __ATOMIC_RELAXED); }
  // +1; true when the count was 0.
  HAK_INLINE bool increment_was_zero() {
    bool was_zero;
    asm volatile("subl $1, %0" : "+m"(neg_), "=@ccc"(was_zero));
    return was_zero;
  }
  // -1; true when the count is 0 now.
  HAK_INLINE bool decrement_is_zero() {
    bool zero;
    asm volatile("addl $1, %0" : "+m"(neg_), "=@ccz"(zero));
    return zero;
  }

 private:
  uint32_t neg_ = 0;
};

#endif

}  // namespace hak
