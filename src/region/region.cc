#include "region/region.h"

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

void init_layout(Region* r, unsigned slot) {
  unsigned cls = slot_class(slot);
  uint32_t bs = static_cast<uint32_t>(class_stride(cls));
  r->magic = kRegionMagic;
  r->kind = slot_kind(slot);
  r->cls = static_cast<uint8_t>(cls);
  r->slot = static_cast<uint8_t>(slot);
  r->warm = 0;
  // The state map follows the struct (Region::states).
  arith::ClassLayout<NativeWord> l =
      arith::class_layout<NativeWord>(bs, static_cast<uint32_t>(sizeof(Region)));
  r->block_size = l.block_size;
  r->inv = l.inv;
  r->data_begin = l.data_begin;
  r->data_end = l.data_end;
  r->active_local.store(0);
  r->owner.store(nullptr, std::memory_order_relaxed);
  r->spill = nullptr;
  r->local_head = &r->spill;
  r->remote_head.store(0, std::memory_order_relaxed);
  r->queue_next.store(nullptr, std::memory_order_relaxed);
  r->next = r->prev = nullptr;
  r->list = RegionList::kNone;
  r->purge_listed = false;
  r->purge_next = r->purge_prev = nullptr;
  r->dequeued = 0;
  r->cleared_end = 0;
}

// The address of block k, and of its state entry.
uintptr_t block_at(const Region* r, uint32_t k) {
  return r->base() + uintptr_t{k} * r->block_size;
}
uintptr_t state_entry(const Region* r, uint32_t k) {
  return reinterpret_cast<uintptr_t>(r->states() + k);
}

// Gives back the whole pages of [from, to) of r, never the first page of the state map
// (it shares the header struct's).
void decommit(const Region* r, uintptr_t from, uintptr_t to) {
  from = align_up(from, kPageSize);
  uintptr_t first = align_up(state_entry(r, 0), kPageSize);
  if (from < first) from = first;
  if (to > from) os_decommit(reinterpret_cast<void*>(from), to - from);
}

// The end of what `mask`'s slabs may have made resident: through the last carved block of
// its highest slab (which may run past the slab), or what region_create cleared.
uintptr_t touched_end(const Region* r, uint32_t mask) {
  const SlabMeta& last = r->slabs[31 - __builtin_clz(mask)];
  uintptr_t end = align_up(block_at(r, last.carve_next), kPageSize);
  uintptr_t cleared = r->base() + r->cleared_end;
  return end > cleared ? end : cleared;
}

// The bytes from the base of r its blocks may have written: its touched span (the state
// map entries below it included), else the header's pages below the state map's first
// whole page (region_reset gave the rest back; decommit keeps those).
size_t written_bytes(const Region* r) {
  uintptr_t end = align_up(state_entry(r, 0), kPageSize);
  if (r->slab_carved_mask) {
    uintptr_t t = touched_end(r, r->slab_carved_mask);
    if (t > end) end = t;
  }
  end -= r->base();
  return end < kRegionSize ? end : kRegionSize;
}

// Makes the first `dirty` bytes of a region taken from the large-run cache read as zero.
// Resident pages are cleared (cheaper than the faults that giving them back would cost at
// the next carve); the others, which a block in the cached run never wrote (a large block
// whose pages were not all touched) or which were swapped out, are given back, one call
// per run of them, so the clear does not fault in pages nothing wrote.
void clear_dirty(char* mem, size_t dirty) {
  static_assert(kRegionSize / kPageSize <= 512);
  unsigned char vec[kRegionSize / kPageSize];
  size_t pages = (dirty + kPageSize - 1) / kPageSize;
  if (!pages) return;
  if (!os_resident(mem, pages * kPageSize, vec)) {
    memset(mem, 0, dirty);
    return;
  }
  for (size_t i = 0; i < pages;) {
    size_t j = i;
    bool resident = vec[i] & 1;
    while (j < pages && bool(vec[j] & 1) == resident) ++j;
    size_t from = i * kPageSize, to = j * kPageSize < dirty ? j * kPageSize : dirty;
    if (resident)
      memset(mem + from, 0, to - from);
    else
      os_decommit(mem + from, j * kPageSize - from);
    i = j;
  }
}

}  // namespace

void region_reset(Region* r, bool decommit_pages) noexcept {
  arith::BlockRange<NativeWord> blocks = arith::region_blocks<NativeWord>(*r);
  if (decommit_pages && r->slab_carved_mask) {
    // One call for the state map (every entry is kFree: it reads zero again) and the
    // carved span; untouched pages in it cost nothing.
    decommit(r, state_entry(r, 0), touched_end(r, r->slab_carved_mask));
    r->cleared_end = 0;
  }
  HAK_MEM_NOACCESS(reinterpret_cast<char*>(r) + r->data_begin,
                   kRegionSize - r->data_begin);  // uncarved
  r->slab_free_mask = r->slab_uncarved_mask = r->slab_carved_mask = 0;
  for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
    SlabMeta& m = r->slabs[i];
    arith::BlockRange<NativeWord> range = arith::slab_blocks<NativeWord>(r->block_size, blocks, i);
    m.free = nullptr;
    m.first = m.carve_next = range.first;
    m.end = range.end;
    if (range.first < range.end) r->slab_uncarved_mask |= 1u << i;
  }
}

Region* region_create(unsigned slot) noexcept {
  // A released region (or a cached large run's) before a fresh mapping: its pages may
  // still be resident (docs/DESIGN.md section 6). Made to look as a fresh mapping does:
  // accessible and reading zero, where the old bytes are cleared (at most its written
  // pages, never the whole region by default: a memset costs far less than the faults).
  size_t dirty = 0;
  void* mem = large_cache_take_region(&dirty);
  if (mem) {
    HAK_MEM_USABLE(mem, kRegionSize);  // kept inaccessible in the cache
    clear_dirty(static_cast<char*>(mem), dirty);
    HAK_MEM_ZEROED(mem, kRegionSize);  // memcheck: defined, as fresh pages are
  } else {
    mem = os_map(kRegionSize, kRegionSize);
    if (!mem) return nullptr;
  }
  Region* r = new (mem) Region();
  init_layout(r, slot);
  region_reset(r, false);
  // What was cleared counts as touched: its pages go back at the next reset.
  r->cleared_end = static_cast<uint32_t>(dirty);
  if (dirty) r->slab_carved_mask = ~0u >> (32 - (dirty + kSlabSize - 1) / kSlabSize);
  registry_add(&r->link);
  RegionKind kind = r->kind;
  unsigned k = kind_index(kind);
  g_live[k].fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
  g_mapped_total[k].fetch_add(1, std::memory_order_relaxed);
  // Published last: from here a free may route to it.
  region_map_set(r->base(), 1, kind, kind);
  return r;
}

void region_release(Region* r, bool keep_pages) noexcept {
  size_t written = written_bytes(r);
  region_map_set(r->base(), 1, RegionKind::kNone, RegionKind::kNone);
  registry_remove(&r->link);
  unsigned k = kind_index(r->kind);
  g_live[k].fetch_sub(1, std::memory_order_relaxed);
  g_released_total[k].fetch_add(1, std::memory_order_relaxed);
  r->magic = 0;
  // Unmapped in spirit: out of the map and the registry, its pages given back after the
  // purge delay or at a trim (or now), or taken by the next region_create (or a large block).
  large_cache_put_region(r, written, keep_pages);
}

void region_reset_except(Region* r, unsigned keep) noexcept {
  uint32_t others = r->slab_carved_mask & ~(1u << keep);
  if (!others) return;
  const SlabMeta& k = r->slabs[keep];
  // Every block is free; only the blocks of `keep` (free lists, the box) keep their bytes,
  // and their state entries (kFree, but about to be written again), so the pages shared
  // with them stay. At most three calls: the state map below keep's entries, the state
  // map above them with the blocks below keep, the blocks above keep.
  if (others & ((1u << keep) - 1))
    decommit(r, state_entry(r, 0), state_entry(r, k.first) & ~(kPageSize - 1));
  decommit(r, align_up(state_entry(r, k.end), kPageSize), block_at(r, k.first) & ~(kPageSize - 1));
  if (uint32_t above = others & ~((2u << keep) - 1))
    decommit(r, align_up(block_at(r, k.end), kPageSize), touched_end(r, above));
  // Cleared pages stay only in keep's span (its blocks are about to be carved), which then
  // counts as touched; below and above it they were given back.
  uintptr_t keep_lo = (block_at(r, k.first) & ~(kPageSize - 1)) - r->base();
  uintptr_t keep_hi = align_up(block_at(r, k.end), kPageSize) - r->base();
  if (r->cleared_end > keep_hi) r->cleared_end = static_cast<uint32_t>(keep_hi);
  if (r->cleared_end <= keep_lo)
    r->cleared_end = 0;
  else
    r->slab_carved_mask |= 1u << keep;
  while (others) {
    unsigned i = __builtin_ctz(others);
    others &= others - 1;
    SlabMeta& m = r->slabs[i];
    HAK_MEM_NOACCESS(reinterpret_cast<char*>(r) + uintptr_t{m.first} * r->block_size,
                     uintptr_t{m.end - m.first} * r->block_size);
    m.free = nullptr;
    m.carve_next = m.first;
    r->slab_free_mask &= ~(1u << i);
    r->slab_carved_mask &= ~(1u << i);
    if (m.first < m.end) r->slab_uncarved_mask |= 1u << i;
  }
}

FreeBlock* region_carve_list(Region* r, unsigned slab, uint32_t max) noexcept {
  SlabMeta& m = r->slabs[slab];
  uint32_t k = m.carve_next, stop = m.end - k < max ? m.end : k + max;
  if (k == stop) return nullptr;
  char* first = reinterpret_cast<char*>(r) + uintptr_t{k} * r->block_size;
  char* p = first;
  for (uint32_t i = k; i + 1 < stop; ++i, p += r->block_size)
    link_set(reinterpret_cast<FreeBlock*>(p), reinterpret_cast<FreeBlock*>(p + r->block_size));
  link_set(reinterpret_cast<FreeBlock*>(p), nullptr);
  m.carve_next = stop;
  r->slab_carved_mask |= 1u << slab;
  if (stop == m.end) r->slab_uncarved_mask &= ~(1u << slab);
  return reinterpret_cast<FreeBlock*>(first);
}

uint32_t region_collect(Region* r, uintptr_t list) noexcept {
  uint32_t n = 0;
  for (FreeBlock* b = reinterpret_cast<FreeBlock*>(list & ~kAbandonedTag); b;) {
    FreeBlock* next = link_next(b);
    Atomic<uint8_t>& st = region_state(r, reinterpret_cast<uintptr_t>(b) - r->base());
    if (HAK_LIKELY(st.load(std::memory_order_relaxed) == kRemote)) {
      st.store(kFree, std::memory_order_relaxed);
      region_put(r, b);
      ++n;
    } else {
      // The owner freed the block too, at the same time as the remote free (a racing double
      // free): it is already in a free list, or live again, and the owner's free counted
      // it. Not listed twice, not counted twice.
      report_error("free", b, "double free (block freed by two threads at once)");
    }
    b = next;
  }
  if (n) r->active_local.store(r->active_local.load() - n);
  return n;
}

uint32_t region_rebuild(Region* r) noexcept {
  uint32_t live = 0;
  r->slab_free_mask = 0;
  r->slab_uncarved_mask = 0;
  for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
    SlabMeta& m = r->slabs[i];
    m.free = nullptr;
    if (m.carve_next < m.end) r->slab_uncarved_mask |= 1u << i;
    if (m.carve_next > m.first) r->slab_carved_mask |= 1u << i;
    // Top down, so the free list runs in address order.
    for (uint32_t k = m.carve_next; k-- > m.first;) {
      uintptr_t off = uintptr_t{k} * r->block_size;
      Atomic<uint8_t>& st = r->states()[k];
      uint8_t s = st.load(std::memory_order_relaxed);
      if (s == kLive) {
        ++live;
        continue;
      }
      // Free: never allocated, freed, or freed by another context (listed or mid-push).
      st.store(kFree, std::memory_order_relaxed);
      if (s == kRemote) HAK_MEM_FREED(reinterpret_cast<char*>(r) + off, r->block_size);
      region_put(r, reinterpret_cast<char*>(r) + off);
    }
  }
  // A spill's blocks are kFree: listed again above.
  r->spill = nullptr;
  r->local_head = &r->spill;
  r->active_local.store(live);
  r->remote_head.store(0, std::memory_order_relaxed);
  return live;
}

// Uninstrumented: inspect's describe runs it for every region with remote frees after every
// op of the fuzzers (7% of fuzz_ops's time with coverage tracing and ASan checks).
HAK_NO_COVERAGE HAK_NO_ASAN uint32_t region_remote_blocks(const Region* r) noexcept {
  uint32_t n = 0;
  const auto* states = r->states();   // once: not inlined into an uninstrumented function
  for (const SlabMeta& m : r->slabs)  // only carved blocks can be kRemote
    for (uint32_t k = m.first; k < m.carve_next; ++k)
      n += states[k].load(std::memory_order_relaxed) == kRemote;
  return n;
}

uint32_t region_pending(const Region* r) noexcept {
  if ((r->remote_head.load(std::memory_order_relaxed) & ~kAbandonedTag) == 0) return 0;
  return region_remote_blocks(r);
}

uint32_t Region::active() const {
  return active(region_pending(this));
}

const char* region_bad_reason(const Region* r, uintptr_t off) noexcept {
  if (off & 7) return "misaligned pointer";
  if (off < r->data_begin) return "invalid pointer (inside a region header)";
  if (off >= r->data_end) return "invalid pointer (past the last block of its region)";
  return "interior pointer (not the start of a block)";
}

const char* region_state_reason(const Region* r, uintptr_t off, const char* fallback) noexcept {
  if (r->magic != kRegionMagic) return "invalid pointer (corrupt region header)";
  if (off < r->data_begin || off >= r->data_end) return region_bad_reason(r, off);
  return fallback;
}

RegionCounters region_counters() noexcept {
  RegionCounters c{};
  for (int k = 0; k < 3; ++k) {
    c.live[k] = g_live[k].load(std::memory_order_relaxed);
    c.mapped_total[k] = g_mapped_total[k].load(std::memory_order_relaxed);
    c.released_total[k] = g_released_total[k].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace hak
