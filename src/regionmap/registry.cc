#include "regionmap/registry.h"

namespace hak {
namespace {
SpinLock g_lock;
RegionLink* g_head = nullptr;
}  // namespace

SpinLock& registry_lock() noexcept {
  return g_lock;
}
RegionLink* registry_head() noexcept {
  return g_head;
}

void registry_add(RegionLink* l) noexcept {
  SpinGuard g(g_lock);
  static uint64_t serial = 0;
  l->serial = ++serial;
  l->prev = nullptr;
  l->next = g_head;
  if (g_head) g_head->prev = l;
  g_head = l;
}

void registry_remove(RegionLink* l) noexcept {
  SpinGuard g(g_lock);
  if (l->prev)
    l->prev->next = l->next;
  else
    g_head = l->next;
  if (l->next) l->next->prev = l->prev;
  l->next = l->prev = nullptr;
}

}  // namespace hak
