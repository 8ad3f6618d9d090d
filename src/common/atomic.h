// The atomics of the lock-free protocol: a Region's remote list and counters, its
// state map entries, SpinLock's flag (the orphan lock among others).
//
// In every build that ships, hak::Atomic<T> is std::atomic<T> itself (an alias: the
// library is the same instruction for instruction as with std::atomic written out).
// With HAKMEM_RELACY=1, set only by the Relacy checks in formal/relacy, it is a handle on
// a Relacy atomic, so that the model checker sees every load, store and read-modify-write
// with its memory order and the src/ line that made it (common/atomic_relacy.h).
//
// Other atomics (the region map, statistics counters, the Os pointer) stay std::atomic:
// no Relacy scenario races on them.
#pragma once

#include <atomic>

#if HAKMEM_RELACY
#include "common/atomic_relacy.h"
#else

namespace hak {

template <class T>
using Atomic = std::atomic<T>;

}  // namespace hak

#endif
