#include "ultra/ultra.h"

#include <errno.h>

#include "thread/thread_cache.h"

namespace hak {

// The box is empty. Cheapest first: another page of the current segment whose free list
// is not empty; then the full refill (collection, other segments, adoption, mapping).
void* ultra_malloc_slow() noexcept {
  ThreadCache* tc = tl_tc;
  UltraBox& box = tc->ultra;
  if (SuperSlab* seg = box.seg; seg && seg->slab_free_mask) {
    unsigned pg = __builtin_ctz(seg->slab_free_mask);
    SlabMeta& m = seg->slabs[pg];
    box.free = m.free;
    m.free = nullptr;
    seg->slab_free_mask &= ~(1u << pg);
    tc->cls[kUltraSlot].cur_slab = pg;
    return ultra_pop(tc);
  }
  return ultra_refill_slow();
}

void* ultra_refill_slow() noexcept {
  ThreadCache* tc = thread_cache_current();
  if (HAK_UNLIKELY(!tc)) {
    errno = ENOMEM;
    return nullptr;
  }
  UltraBox& box = tc->ultra;
  if (!box.free) {
    if (!thread_cache_ensure_slab(tc, kUltraSlot)) {
      errno = ENOMEM;
      return nullptr;
    }
    ClassCache& cc = tc->cls[kUltraSlot];
    SuperSlab* seg = cc.cur;
    unsigned pg = cc.cur_slab;
    SlabMeta& m = seg->slabs[pg];
    if (m.free) {  // the page's whole free list moves into the box
      box.free = m.free;
      m.free = nullptr;
      seg->slab_free_mask &= ~(1u << pg);
    } else {
      box.free = superslab_carve_list(seg, pg, kUltraCarveBatch);
    }
    box.seg = seg;
  }
  return ultra_pop(tc);
}

void ultra_box_flush(UltraBox& box) noexcept {
  for (FreeBlock* b = box.free; b;) {
    FreeBlock* next = link_next(b);
    superslab_put(box.seg, b);
    b = next;
  }
  box = UltraBox{};
}

}  // namespace hak
