#include "tiny/superslab.h"

#include <new>

#include "os/os.h"

namespace hak {
namespace {

std::atomic<uint64_t> g_live[3], g_mapped_total[3], g_released_total[3];

unsigned kind_index(RegionKind k) {
  return k == RegionKind::kMid ? 1 : k == RegionKind::kUltra ? 2 : 0;
}

void init_layout(SuperSlab* ss, unsigned slot) {
  unsigned cls = slot_class(slot);
  uint32_t bs = static_cast<uint32_t>(class_size(cls));
  ss->magic = kSuperSlabMagic;
  ss->kind = slot_kind(slot);
  ss->cls = static_cast<uint8_t>(cls);
  ss->slot = static_cast<uint8_t>(slot);
  ss->warm = 0;
  // The bitmaps follow the struct (SuperSlab::bits).
  arith::ClassLayout<NativeWord> l =
      arith::class_layout<NativeWord>(bs, static_cast<uint32_t>(sizeof(SuperSlab)));
  ss->bit_shift = l.bit_shift;
  ss->block_size = l.block_size;
  ss->size_mask = l.size_mask;
  ss->inv = l.inv;
  ss->data_begin = l.data_begin;
  ss->data_end = l.data_end;
  ss->active_local.store(0, std::memory_order_relaxed);
  ss->owner.store(nullptr, std::memory_order_relaxed);
  ss->remote_pending.store(0, std::memory_order_relaxed);
  ss->remote_head.store(0, std::memory_order_relaxed);
  ss->queue_next.store(nullptr, std::memory_order_relaxed);
  ss->next = ss->prev = nullptr;
  ss->list = SuperSlabList::kNone;
  ss->purge_listed = false;
  ss->purge_next = ss->purge_prev = nullptr;
  ss->dequeued = 0;
}

}  // namespace

void superslab_reset(SuperSlab* ss, bool decommit) noexcept {
  arith::BlockRange<NativeWord> blocks = arith::region_blocks<NativeWord>(*ss);
  if (decommit && ss->slab_carved_mask) {
    // One call for the whole carved span; untouched pages in it cost nothing.
    unsigned lo = __builtin_ctz(ss->slab_carved_mask),
             hi = 31 - __builtin_clz(ss->slab_carved_mask);
    uintptr_t from = align_up(ss->base() + ss->data_begin, kPageSize);
    uintptr_t lo_addr = ss->base() + (uintptr_t{lo} << kSlabShift);
    if (lo_addr > from) from = lo_addr;
    // Through the last carved block, which may run past its slab (no block is live).
    const SlabMeta& last = ss->slabs[hi];
    uintptr_t to = align_up(ss->base() + uintptr_t{last.carve_next} * ss->block_size, kPageSize);
    if (to > from) os_decommit(reinterpret_cast<void*>(from), to - from);
  }
  HAK_MEM_NOACCESS(reinterpret_cast<char*>(ss) + ss->data_begin,
                   kRegionSize - ss->data_begin);  // uncarved
  ss->slab_free_mask = ss->slab_uncarved_mask = ss->slab_carved_mask = 0;
  for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
    SlabMeta& m = ss->slabs[i];
    arith::BlockRange<NativeWord> r = arith::slab_blocks<NativeWord>(ss->block_size, blocks, i);
    m.free = nullptr;
    m.first = m.carve_next = r.first;
    m.end = r.end;
    if (r.first < r.end) ss->slab_uncarved_mask |= 1u << i;
  }
}

SuperSlab* superslab_map(unsigned slot) noexcept {
  void* mem = os_map(kRegionSize, kRegionSize);
  if (!mem) return nullptr;
  SuperSlab* ss = new (mem) SuperSlab();
  init_layout(ss, slot);
  superslab_reset(ss, false);
  registry_add(&ss->link);
  RegionKind kind = ss->kind;
  unsigned k = kind_index(kind);
  g_live[k].fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  g_mapped_total[k].fetch_add(1, std::memory_order_relaxed);
  // Published last: from here a free may route to it.
  region_map_set(ss->base(), 1, kind, kind);
  return ss;
}

void superslab_unmap(SuperSlab* ss) noexcept {
  region_map_set(ss->base(), 1, RegionKind::kNone, RegionKind::kNone);
  registry_remove(&ss->link);
  unsigned k = kind_index(ss->kind);
  g_live[k].fetch_sub(1, std::memory_order_relaxed);
  g_released_total[k].fetch_add(1, std::memory_order_relaxed);
  ss->magic = 0;
  HAK_MEM_USABLE(ss, kRegionSize);  // the range may be mapped again by anyone
  os_unmap(ss, kRegionSize);
}

void superslab_reset_except(SuperSlab* ss, unsigned keep) noexcept {
  uint32_t others = ss->slab_carved_mask & ~(1u << keep);
  if (!others) return;
  const SlabMeta& k = ss->slabs[keep];
  uintptr_t base = ss->base();
  // Every block is free; only the blocks of `keep` (free lists, the box) keep their bytes,
  // so the pages shared with them stay. One call below `keep`, one above.
  uint32_t below = others & ((1u << keep) - 1), above = others & ~((2u << keep) - 1);
  if (below) {
    uintptr_t from = align_up(base + ss->data_begin, kPageSize);
    uintptr_t lo = base + (static_cast<uintptr_t>(__builtin_ctz(below)) << kSlabShift);
    if (lo > from) from = lo;
    uintptr_t to = (base + uintptr_t{k.first} * ss->block_size) & ~(kPageSize - 1);
    if (to > from) os_decommit(reinterpret_cast<void*>(from), to - from);
  }
  if (above) {
    uintptr_t from = align_up(base + uintptr_t{k.end} * ss->block_size, kPageSize);
    // Through the last carved block, which may run past its slab.
    const SlabMeta& last = ss->slabs[31 - __builtin_clz(above)];
    uintptr_t to = align_up(base + uintptr_t{last.carve_next} * ss->block_size, kPageSize);
    if (to > from) os_decommit(reinterpret_cast<void*>(from), to - from);
  }
  while (others) {
    unsigned i = __builtin_ctz(others);
    others &= others - 1;
    SlabMeta& m = ss->slabs[i];
    HAK_MEM_NOACCESS(reinterpret_cast<char*>(ss) + uintptr_t{m.first} * ss->block_size,
                     uintptr_t{m.end - m.first} * ss->block_size);
    m.free = nullptr;
    m.carve_next = m.first;
    ss->slab_free_mask &= ~(1u << i);
    ss->slab_carved_mask &= ~(1u << i);
    if (m.first < m.end) ss->slab_uncarved_mask |= 1u << i;
  }
}

FreeBlock* superslab_carve_list(SuperSlab* ss, unsigned slab, uint32_t max) noexcept {
  SlabMeta& m = ss->slabs[slab];
  uint32_t k = m.carve_next, stop = m.end - k < max ? m.end : k + max;
  if (k == stop) return nullptr;
  char* first = reinterpret_cast<char*>(ss) + uintptr_t{k} * ss->block_size;
  char* p = first;
  for (uint32_t i = k; i + 1 < stop; ++i, p += ss->block_size)
    link_set(reinterpret_cast<FreeBlock*>(p), reinterpret_cast<FreeBlock*>(p + ss->block_size));
  link_set(reinterpret_cast<FreeBlock*>(p), nullptr);
  m.carve_next = stop;
  ss->slab_carved_mask |= 1u << slab;
  if (stop == m.end) ss->slab_uncarved_mask &= ~(1u << slab);
  return reinterpret_cast<FreeBlock*>(first);
}

uint32_t superslab_collect(SuperSlab* ss, uintptr_t list) noexcept {
  uint32_t n = 0;
  for (FreeBlock* b = reinterpret_cast<FreeBlock*>(list & ~kAbandonedTag); b;) {
    FreeBlock* next = link_next(b);
    uintptr_t off = reinterpret_cast<uintptr_t>(b) - ss->base();
    BlockBit bit = superslab_bit(ss, off);
    Atomic<uint64_t>& a = ss->bits()[bit.word].alloc;
    a.store(a.load(std::memory_order_relaxed) & ~bit.mask, std::memory_order_relaxed);
    // release: a later (double) free that takes the bit again sees the alloc bit cleared
    // above (superslab_free_remote's acquire); the list exchange ordered the block.
    ss->bits()[bit.word].remote.fetch_and(~bit.mask, std::memory_order_release);
    superslab_put(ss, b);
    ++n;
    b = next;
  }
  if (n) {
    ss->active_local.store(ss->active_local.load(std::memory_order_relaxed) - n,
                           std::memory_order_relaxed);
    ss->remote_pending.fetch_sub(n, std::memory_order_relaxed);
  }
  return n;
}

uint32_t superslab_rebuild(SuperSlab* ss) noexcept {
  uint32_t live = 0;
  ss->slab_free_mask = 0;
  ss->slab_uncarved_mask = 0;
  for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
    SlabMeta& m = ss->slabs[i];
    m.free = nullptr;
    if (m.carve_next < m.end) ss->slab_uncarved_mask |= 1u << i;
    if (m.carve_next > m.first) ss->slab_carved_mask |= 1u << i;
    // Top down, so the free list runs in address order.
    for (uint32_t k = m.carve_next; k-- > m.first;) {
      uintptr_t off = uintptr_t{k} * ss->block_size;
      BlockBit b = superslab_bit(ss, off);
      SuperSlab::BitWords& w = ss->bits()[b.word];
      uint64_t a = w.alloc.load(std::memory_order_relaxed);
      uint64_t r = w.remote.load(std::memory_order_relaxed);
      if ((a & b.mask) && !(r & b.mask)) {
        ++live;
        continue;
      }
      // Free: never allocated, freed, or freed by another context (listed or mid-push).
      w.alloc.store(a & ~b.mask, std::memory_order_relaxed);
      w.remote.store(r & ~b.mask, std::memory_order_relaxed);
      if (a & b.mask) HAK_MEM_FREED(reinterpret_cast<char*>(ss) + off, ss->block_size);
      superslab_put(ss, reinterpret_cast<char*>(ss) + off);
    }
  }
  ss->active_local.store(live, std::memory_order_relaxed);
  ss->remote_pending.store(0, std::memory_order_relaxed);
  ss->remote_head.store(0, std::memory_order_relaxed);
  return live;
}

const char* superslab_bad_reason(const SuperSlab* ss, uintptr_t off) noexcept {
  if (off & 7) return "misaligned pointer";
  if (off < ss->data_begin) return "invalid pointer (inside a SuperSlab header)";
  if (off >= ss->data_end) return "invalid pointer (past the last block of its SuperSlab)";
  return "interior pointer (not the start of a block)";
}

const char* superslab_state_reason(const SuperSlab* ss, uintptr_t off,
                                   const char* fallback) noexcept {
  if (ss->magic != kSuperSlabMagic) return "invalid pointer (corrupt SuperSlab header)";
  if (off < ss->data_begin || off >= ss->data_end) return superslab_bad_reason(ss, off);
  return fallback;
}

SuperSlabCounters superslab_counters() noexcept {
  SuperSlabCounters c{};
  for (int k = 0; k < 3; ++k) {
    c.live[k] = g_live[k].load(std::memory_order_relaxed);
    c.mapped_total[k] = g_mapped_total[k].load(std::memory_order_relaxed);
    c.released_total[k] = g_released_total[k].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace hak
