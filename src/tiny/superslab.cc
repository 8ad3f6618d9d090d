#include "tiny/superslab.h"

#include <cstring>
#include <new>

#include "config/config.h"
#include "large/large.h"
#include "os/os.h"

namespace hak {
namespace {

std::atomic<uint64_t> g_live[3], g_mapped_total[3], g_released_total[3];

unsigned kind_index(RegionKind k) {
  return k == RegionKind::kMid ? 1 : k == RegionKind::kUltra ? 2 : 0;
}

void init_layout(SuperSlab* ss, unsigned slot) {
  unsigned cls = slot_class(slot);
  uint32_t bs = static_cast<uint32_t>(class_stride(cls));
  ss->magic = kSuperSlabMagic;
  ss->kind = slot_kind(slot);
  ss->cls = static_cast<uint8_t>(cls);
  ss->slot = static_cast<uint8_t>(slot);
  ss->warm = 0;
  // The state map follows the struct (SuperSlab::states).
  arith::ClassLayout<NativeWord> l =
      arith::class_layout<NativeWord>(bs, static_cast<uint32_t>(sizeof(SuperSlab)));
  ss->block_size = l.block_size;
  ss->inv = l.inv;
  ss->data_begin = l.data_begin;
  ss->data_end = l.data_end;
  ss->active_local.store(0, std::memory_order_relaxed);
  ss->owner.store(nullptr, std::memory_order_relaxed);
  ss->spill = nullptr;
  ss->local_head = &ss->spill;
  ss->remote_pending.store(0, std::memory_order_relaxed);
  ss->remote_head.store(0, std::memory_order_relaxed);
  ss->queue_next.store(nullptr, std::memory_order_relaxed);
  ss->next = ss->prev = nullptr;
  ss->list = SuperSlabList::kNone;
  ss->purge_listed = false;
  ss->purge_next = ss->purge_prev = nullptr;
  ss->dequeued = 0;
  ss->cleared_end = 0;
}

// The address of block k, and of its state entry.
uintptr_t block_at(const SuperSlab* ss, uint32_t k) {
  return ss->base() + uintptr_t{k} * ss->block_size;
}
uintptr_t state_entry(const SuperSlab* ss, uint32_t k) {
  return reinterpret_cast<uintptr_t>(ss->states() + k);
}

// Gives back the whole pages of [from, to) of ss, never the first page of the state map
// (it shares the header struct's).
void decommit(const SuperSlab* ss, uintptr_t from, uintptr_t to) {
  from = align_up(from, kPageSize);
  uintptr_t first = align_up(state_entry(ss, 0), kPageSize);
  if (from < first) from = first;
  if (to > from) os_decommit(reinterpret_cast<void*>(from), to - from);
}

// The end of what `mask`'s slabs may have made resident: through the last carved block of
// its highest slab (which may run past the slab), or what superslab_map cleared.
uintptr_t touched_end(const SuperSlab* ss, uint32_t mask) {
  const SlabMeta& last = ss->slabs[31 - __builtin_clz(mask)];
  uintptr_t end = align_up(block_at(ss, last.carve_next), kPageSize);
  uintptr_t cleared = ss->base() + ss->cleared_end;
  return end > cleared ? end : cleared;
}

// The bytes from the base of ss its blocks may have written: its touched span (the state
// map entries below it included), else the header's pages below the state map's first
// whole page (superslab_reset gave the rest back; decommit keeps those).
size_t written_bytes(const SuperSlab* ss) {
  uintptr_t end = align_up(state_entry(ss, 0), kPageSize);
  if (ss->slab_carved_mask) {
    uintptr_t t = touched_end(ss, ss->slab_carved_mask);
    if (t > end) end = t;
  }
  end -= ss->base();
  return end < kRegionSize ? end : kRegionSize;
}

}  // namespace

void superslab_reset(SuperSlab* ss, bool decommit_pages) noexcept {
  arith::BlockRange<NativeWord> blocks = arith::region_blocks<NativeWord>(*ss);
  if (decommit_pages && ss->slab_carved_mask) {
    // One call for the state map (every entry is kFree: it reads zero again) and the
    // carved span; untouched pages in it cost nothing.
    decommit(ss, state_entry(ss, 0), touched_end(ss, ss->slab_carved_mask));
    ss->cleared_end = 0;
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
  // A released region (or a cached large run's) before a fresh mapping: its pages may
  // still be resident (docs/DESIGN.md section 6). Made to look as a fresh mapping does:
  // accessible and reading zero, where the old bytes are cleared (at most its written
  // pages, never the whole region by default: a memset costs far less than the faults).
  size_t dirty = 0;
  void* mem = large_cache_take_region(&dirty);
  if (mem) {
    HAK_MEM_USABLE(mem, kRegionSize);  // kept inaccessible in the cache
    memset(mem, 0, dirty);
    HAK_MEM_ZEROED(mem, kRegionSize);  // memcheck: defined, as fresh pages are
  } else {
    mem = os_map(kRegionSize, kRegionSize);
    if (!mem) return nullptr;
  }
  SuperSlab* ss = new (mem) SuperSlab();
  init_layout(ss, slot);
  superslab_reset(ss, false);
  // What was cleared counts as touched: its pages go back at the next reset.
  ss->cleared_end = static_cast<uint32_t>(dirty);
  if (dirty) ss->slab_carved_mask = ~0u >> (32 - (dirty + kSlabSize - 1) / kSlabSize);
  registry_add(&ss->link);
  RegionKind kind = ss->kind;
  unsigned k = kind_index(kind);
  g_live[k].fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  g_mapped_total[k].fetch_add(1, std::memory_order_relaxed);
  // Published last: from here a free may route to it.
  region_map_set(ss->base(), 1, kind, kind);
  return ss;
}

void superslab_unmap(SuperSlab* ss, bool keep_pages) noexcept {
  size_t written = written_bytes(ss);
  region_map_set(ss->base(), 1, RegionKind::kNone, RegionKind::kNone);
  registry_remove(&ss->link);
  unsigned k = kind_index(ss->kind);
  g_live[k].fetch_sub(1, std::memory_order_relaxed);
  g_released_total[k].fetch_add(1, std::memory_order_relaxed);
  ss->magic = 0;
  // Unmapped in spirit: out of the map and the registry, its pages given back after the
  // purge delay or at a trim (or now), or taken by the next superslab_map (or a large block).
  large_cache_put_region(ss, written, keep_pages);
}

void superslab_reset_except(SuperSlab* ss, unsigned keep) noexcept {
  uint32_t others = ss->slab_carved_mask & ~(1u << keep);
  if (!others) return;
  const SlabMeta& k = ss->slabs[keep];
  // Every block is free; only the blocks of `keep` (free lists, the box) keep their bytes,
  // and their state entries (kFree, but about to be written again), so the pages shared
  // with them stay. At most three calls: the state map below keep's entries, the state
  // map above them with the blocks below keep, the blocks above keep.
  if (others & ((1u << keep) - 1))
    decommit(ss, state_entry(ss, 0), state_entry(ss, k.first) & ~(kPageSize - 1));
  decommit(ss, align_up(state_entry(ss, k.end), kPageSize),
           block_at(ss, k.first) & ~(kPageSize - 1));
  if (uint32_t above = others & ~((2u << keep) - 1))
    decommit(ss, align_up(block_at(ss, k.end), kPageSize), touched_end(ss, above));
  // Cleared pages stay only in keep's span (its blocks are about to be carved), which then
  // counts as touched; below and above it they were given back.
  uintptr_t keep_lo = (block_at(ss, k.first) & ~(kPageSize - 1)) - ss->base();
  uintptr_t keep_hi = align_up(block_at(ss, k.end), kPageSize) - ss->base();
  if (ss->cleared_end > keep_hi) ss->cleared_end = static_cast<uint32_t>(keep_hi);
  if (ss->cleared_end <= keep_lo)
    ss->cleared_end = 0;
  else
    ss->slab_carved_mask |= 1u << keep;
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
  uint32_t n = 0, lost = 0;
  for (FreeBlock* b = reinterpret_cast<FreeBlock*>(list & ~kAbandonedTag); b;) {
    FreeBlock* next = link_next(b);
    Atomic<uint8_t>& st = superslab_state(ss, reinterpret_cast<uintptr_t>(b) - ss->base());
    if (HAK_LIKELY(st.load(std::memory_order_relaxed) == kRemote)) {
      st.store(kFree, std::memory_order_relaxed);
      superslab_put(ss, b);
      ++n;
    } else {
      // The owner freed the block too, at the same time as the remote free (a racing double
      // free): it is already in a free list, or live again. Not listed twice, not counted.
      report_error("free", b, "double free (block freed by two threads at once)");
      ++lost;
    }
    b = next;
  }
  if (n + lost) {
    ss->active_local.store(ss->active_local.load(std::memory_order_relaxed) - n,
                           std::memory_order_relaxed);
    ss->remote_pending.fetch_sub(n + lost, std::memory_order_relaxed);
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
      Atomic<uint8_t>& st = ss->states()[k];
      uint8_t s = st.load(std::memory_order_relaxed);
      if (s == kLive) {
        ++live;
        continue;
      }
      // Free: never allocated, freed, or freed by another context (listed or mid-push).
      st.store(kFree, std::memory_order_relaxed);
      if (s == kRemote) HAK_MEM_FREED(reinterpret_cast<char*>(ss) + off, ss->block_size);
      superslab_put(ss, reinterpret_cast<char*>(ss) + off);
    }
  }
  // A spill's blocks are kFree: listed again above.
  ss->spill = nullptr;
  ss->local_head = &ss->spill;
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
