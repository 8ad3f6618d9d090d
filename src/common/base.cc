#include "common/base.h"

#include <sched.h>

namespace hak {

void wait_pause(unsigned spins) noexcept {
#if HAKMEM_RELACY
  (void)spins;
  spin_wait();  // the model checker runs the other thread
#else
  if (spins > 64)
    sched_yield();
  else
    __builtin_ia32_pause();
#endif
}

void SpinLock::lock() noexcept {
  for (unsigned spins = 0;; ++spins) {
    // relaxed: only a hint; the exchange in try_lock is the acquire.
    if (!locked_.load(std::memory_order_relaxed) && try_lock()) return;
    wait_pause(spins);
  }
}

}  // namespace hak
