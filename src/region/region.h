// Region: the header of a class region, 2 MiB of one size class, split into 32 slabs of 64 KiB,
// carved lazily. Tiny classes (kind SUPERSLAB), mid classes (kind MID) and the C7 ULTRA segments
// (kind ULTRA: its slabs are the ULTRA pages) share this engine and one fast path (front/hot.h);
// they differ in region kind only.
//
// Layout: [header | state map | blocks on the class grid ...]
// Block k lives at base + k * block_size, the grid step (class_stride: the class size, one
// cache line more for C6 and C7, whose blocks keep it unused; src/tiny/size_class.h). Its index k =
// (off * inv) >> 40, which is exact for every grid position, so one multiply gives both the
// boundary check (k * block_size
// == off) and the block's state entry (proved with the rest of the arithmetic below,
// formal/z3). The state map has one entry per grid position of the region:
//  - kFree:   not live (never carved, in a free list, or the header's positions).
//  - kLive:   handed out. Only the owner writes kFree <-> kLive (plain relaxed stores).
//  - kRemote: freed by another context (one compare-and-swap from kLive), on the remote
//             list until the owner collects it (kRemote -> kFree).
// An entry of its own per block: a free writes one byte, no other block's state shares
// the store, and a remote free is a single atomic step from live to freed.
// Exact active count: active = active_local - the kRemote blocks (docs/DESIGN.md section 2).
// Uncarved blocks read as zero except in their partial first and last pages: a region is
// mapped zeroed, and every reset that uncarves blocks gives back each whole page of them
// (pages shared with a neighbour block or the header keep their bytes). calloc_mid relies
// on it.
#pragma once

#include <atomic>
#include <cstdint>
#include <tuple>

#include "common/base.h"
#include "common/memtool.h"
#include "common/owner_count.h"
#include "regionmap/region_map.h"
#include "regionmap/registry.h"
#include "tiny/size_class.h"

namespace hak {

struct Context;

struct FreeBlock {
  FreeBlock* next;
};

// A free block's link. Free blocks stay poisoned in ASan builds, so links are read and
// written only through these two (not instrumented). Under Relacy the link is a model
// variable: a link read not ordered after its write is reported as a data race.
#if HAKMEM_RELACY
inline FreeBlock* link_next(const FreeBlock* b, relacy::Where w = {}) {
  return plain_load(&b->next, w);
}
inline void link_set(FreeBlock* b, FreeBlock* next, relacy::Where w = {}) {
  plain_store(&b->next, next, w);
}
#else
HAK_NO_ASAN inline FreeBlock* link_next(const FreeBlock* b) {
  HAK_LINK_OPEN(b);
  FreeBlock* next = b->next;
  HAK_LINK_CLOSE(b);
  return next;
}
HAK_NO_ASAN inline void link_set(FreeBlock* b, FreeBlock* next) {
  HAK_LINK_OPEN(b);
  b->next = next;
  HAK_LINK_CLOSE(b);
}
#endif

struct SlabMeta {
  FreeBlock* free = nullptr;  // owner-side free list
  uint32_t carve_next = 0;    // next block index to carve
  uint32_t first = 0;         // first block index of the slab
  uint32_t end = 0;           // one past its last block index
};

inline constexpr uint32_t kRegionMagic = 0x53534B48;  // "HKSS"
// remote_head bit 0: the region is abandoned (no owner); pushes must take the orphan lock.
inline constexpr uintptr_t kAbandonedTag = 1;

// A block's entry in its region's state map (the header comment says who writes which).
enum BlockState : uint8_t { kFree = 0, kLive = 1, kRemote = 2 };

enum class RegionList : uint8_t { kNone, kPartial, kFull, kPool, kAbandoned };

struct alignas(64) Region {
  // The lines the fast paths touch are lines 1, 2 and 4, not line 0: page offset 0 is
  // that of every region's base, of every block start of the 4 KiB-aligned mid classes,
  // and of every page-aligned structure (4K aliasing, cache set 0). bench_churn --size 16
  // --keep 1 1.07-1.10x, bench_mixed 513..4096 B 1.08x, bench_stranded 1.19x; no
  // instruction more (displacements only).
  // --- owner-side cold state: line 0 ---
  Region* next;
  Region* prev;
  RegionList list;
  uint8_t dequeued;             // taken off the queue by its exiting owner (context.cc)
  uint32_t slab_free_mask;      // slabs whose free list is non-empty
  uint32_t slab_uncarved_mask;  // slabs with blocks never carved
  uint32_t slab_carved_mask;    // slabs touched since the last reset (carved or cleared)
  // Bytes from the base that region_create cleared in a region taken from the large-run
  // cache (0 for a fresh one): resident though not carved; the slabs they reach count as
  // carved, so the pages go back as carved ones do.
  uint32_t cleared_end;

  // --- line 1: read on every free; written at (re)initialisation only ---
  alignas(64) uint32_t magic;
  RegionKind kind;
  uint8_t cls;
  uint8_t warm;         // empty and kept in a warm reserve (owner's, or the pool)
  uint8_t slot;         // class, or kUltraSlot
  uint32_t block_size;  // the grid step (class_stride); a block's usable bytes: usable()
  uint64_t inv;         // ceil(2^40 / block_size): the block index of an offset, by multiply
  uint32_t data_begin;
  uint32_t data_end;  // one past the last block's start offset
  Atomic<Context*> owner;
  // Where the owner's free of a block of this region pushes it (front/hot.h free_fast):
  // &box.free of its slot while this is the box's region, else &spill. Written and read
  // by the owner only (free_fast tests the owner first).
  FreeBlock** local_head;

  // --- line 2: written by the owner on its mallocs and frees: a line of its own, so line 1
  // (which remote frees read) stays shared instead of moving to the owner on each of them ---
  // Live blocks and pending remote frees (those count until collected). Written by the
  // owner (or the orphan lock's holder); inspect and other threads may read it.
  alignas(64) OwnerCount active_local;
  // The owner's frees while this is not its box's region (LIFO), taken whole into the box
  // by the refill that picks the region (context.cc). Empty in a box's region and in
  // a region without owner.
  FreeBlock* spill;

  // --- line 3, owner-side cold state (continued): line 2's pair in the 128-byte blocks the
  // L2 prefetcher fetches together, so that pair is the owner's alone (with the remote
  // line there, bench_prodcons lost 3-5%); the remote line's pair is the slab metas',
  // written at refills only ---
  // Warm with pages still to give back: on its owner's purge list, due at purge_at_ms.
  alignas(64) bool purge_listed;
  uint64_t purge_at_ms;
  Region* purge_next;
  Region* purge_prev;
  RegionLink link;

  // --- line 4: written by remote frees ---
  alignas(64) Atomic<uintptr_t> remote_head;
  // The link of the owner's region queue of this slot (context.cc): written by the
  // remote free that found remote_head empty, read by the owner that took the queue.
  Atomic<Region*> queue_next;

  alignas(64) SlabMeta slabs[kSlabsPerRegion];

  // The state map, right after the struct: entry k is block k's BlockState.
  Atomic<uint8_t>* states() { return reinterpret_cast<Atomic<uint8_t>*>(this + 1); }
  const Atomic<uint8_t>* states() const {
    return reinterpret_cast<const Atomic<uint8_t>*>(this + 1);
  }
  uintptr_t base() const { return reinterpret_cast<uintptr_t>(this); }
  // The usable bytes of a block: the class size (block_size past it for C6 and C7).
  uint32_t usable() const { return static_cast<uint32_t>(class_size(cls)); }
  // Live blocks (SPEC's live): active_local less the pending remote frees (region_pending,
  // or `pending` when the caller has it). A snapshot; exact whenever no free is in flight.
  uint32_t active() const;
  uint32_t active(uint32_t pending) const { return active_local.load() - pending; }
  bool has_free_space() const {
    return (slab_free_mask | slab_uncarved_mask) != 0 || spill != nullptr;
  }
};

HAK_INLINE RegionKind slot_kind(unsigned s) {
  return s == kUltraSlot    ? RegionKind::kUltra
         : class_is_tiny(s) ? RegionKind::kSuperSlab
                            : RegionKind::kMid;
}

HAK_INLINE Region* region_of(const void* p) {
  return reinterpret_cast<Region*>(region_base(p));
}

// Bytes of one state map entry: 1, but 8 under Relacy (its Atomic is a handle).
inline constexpr uint32_t kStateEntryBytes = sizeof(Atomic<uint8_t>);

// The arithmetic of a class region over a word policy (common/word.h): production runs it
// with NativeWord on a Region, formal/z3 proves it with bit-vectors on a ClassLayout
// (`L` below: either, they have the same layout fields).
namespace arith {

// The numbers init_layout stores in a Region of blocks of `block_size` bytes whose
// header (the Region struct) takes `header_bytes`.
template <class W>
struct ClassLayout {
  word32<W> block_size;
  word64<W> inv;          // ceil(2^40 / block_size)
  word32<W> state_bytes;  // of the state map: an entry per grid position, whole lines
  word32<W> data_begin;   // first block start: the first grid position past the state map
  word32<W> data_end;     // one past the last block start: the last block ends by 2 MiB
  auto fields() { return std::tie(block_size, inv, state_bytes, data_begin, data_end); }
};
template <class W>
HAK_INLINE ClassLayout<W> class_layout(word32<W> block_size, word32<W> header_bytes) {
  // Grid positions k * block_size < 2 MiB: the header's and the blocks' alike.
  word64<W> positions = (kRegionSize + block_size - 1) / block_size;
  word32<W> states = W::to_u32(align_up<W>(positions * kStateEntryBytes, 64));
  word32<W> header_end = header_bytes + states;
  return {block_size, ((uint64_t{1} << 40) + block_size - 1) / block_size, states,
          (header_end + block_size - 1) / block_size * block_size,
          W::to_u32(kRegionSize / block_size * block_size)};
}

// The index of the grid position at or below `off` (an offset in the region) by the
// reciprocal: exact on the grid, so no division on the free path.
template <class W, class L>
HAK_INLINE word64<W> block_index(const L& r, word64<W> off) {
  return (off * r.inv) >> 40;
}

// True when block k starts at `off`.
template <class W, class L>
HAK_INLINE boolean<W> block_starts_at(const L& r, word64<W> k, word64<W> off) {
  return k * r.block_size == off;
}

// True when `off` is on the class grid (a multiple of the block size): its block index's
// block starts there. The free path runs the same two steps (front/hot.h), keeping the
// index for the state entry.
template <class W, class L>
HAK_INLINE boolean<W> on_grid(const L& r, word64<W> off) {
  return block_starts_at<W>(r, block_index<W>(r, off), off);
}

// True when `off` is the start of a block: inside [data_begin, data_end) and on the grid.
template <class W, class L>
HAK_INLINE boolean<W> is_block_start(const L& r, word64<W> off) {
  if (HAK_UNLIKELY(off - r.data_begin >= r.data_end - r.data_begin)) return false;
  return on_grid<W>(r, off);
}

// The slab (0..31) that holds the offset `off` of a region.
template <class W>
HAK_INLINE word32<W> slab_index(word64<W> off) {
  return W::to_u32(off >> kSlabShift);
}

// A range [first, end) of block indices (block k starts at offset k * block_size).
template <class W>
struct BlockRange {
  word32<W> first, end;
  auto fields() { return std::tie(first, end); }
};
// The blocks of a region: [data_begin, data_end) in block indices.
template <class W, class L>
HAK_INLINE BlockRange<W> region_blocks(const L& r) {
  return {r.data_begin / r.block_size, r.data_end / r.block_size};
}
// The blocks of slab i (those that start in it) among the region's `blocks`: the blocks
// region_put gives back to slab i.
template <class W>
HAK_INLINE BlockRange<W> slab_blocks(word32<W> block_size, BlockRange<W> blocks, word32<W> i) {
  word64<W> lo = W::to_u64(i) << kSlabShift, hi = W::to_u64(i + 1) << kSlabShift;
  word32<W> f = W::to_u32((lo + block_size - 1) / block_size),
            e = W::to_u32((hi + block_size - 1) / block_size);
  if (f < blocks.first) f = blocks.first;
  if (e > blocks.end) e = blocks.end;
  if (f > e) f = e;
  return {f, e};
}

}  // namespace arith

// The block index of `off` (exact when it is on the grid: region_on_grid).
HAK_INLINE uint64_t region_block_index(const Region* r, uintptr_t off) {
  return arith::block_index<NativeWord>(*r, off);
}
HAK_INLINE bool region_block_starts_at(const Region* r, uint64_t k, uintptr_t off) {
  return arith::block_starts_at<NativeWord>(*r, k, off);
}

// True when `off` is on the class grid. Grid positions outside the block range (the
// header) never have their state set to kLive, so the free path's state test rejects them.
HAK_INLINE bool region_on_grid(const Region* r, uintptr_t off) {
  return arith::on_grid<NativeWord>(*r, off);
}

// True when `off` is the start of a block of this Region.
HAK_INLINE bool region_is_block_start(const Region* r, uintptr_t off) {
  return arith::is_block_start<NativeWord>(*r, off);
}

// The state entry of the block at `off` (a grid position).
HAK_INLINE Atomic<uint8_t>& region_state(Region* r, uintptr_t off) {
  return r->states()[region_block_index(r, off)];
}
HAK_INLINE uint8_t region_state_of(const Region* r, uintptr_t off) {
  // relaxed: a value; the owner's own writes, or a remote free's that reached it.
  return r->states()[region_block_index(r, off)].load(std::memory_order_relaxed);
}

// True unless the state entry is kLive: the free path's test. A relaxed load, written as
// one compare with a memory operand (a relaxed atomic load is never folded into the
// compare by the compilers: an address computation and a load more on every free).
// Inline assembly, so ThreadSanitizer does not see this read (the remote frees' compare-
// and-swaps on the entry it sees); the Relacy checks see an atomic load.
HAK_INLINE bool state_not_live(const Atomic<uint8_t>& st) {
#if HAKMEM_RELACY
  return st.load(std::memory_order_relaxed) != kLive;
#else
  bool not_live;
  asm volatile("cmpb %2, %1" : "=@ccne"(not_live) : "m"(st), "i"(kLive));
  return not_live;
#endif
}

// The owner hands the block at `off` out (relaxed: only the owner writes kLive; readers
// only need a value).
HAK_INLINE void region_mark_live(Region* r, uintptr_t off) {
  region_state(r, off).store(kLive, std::memory_order_relaxed);
}

// The intrusive region lists (a context's partial / full lists, the orphan pool and
// abandoned lists): `l` names the list r joins.
inline void region_list_push(Region*& head, Region* r, RegionList l) {
  r->prev = nullptr;
  r->next = head;
  if (head) head->prev = r;
  head = r;
  r->list = l;
}
inline void region_list_unlink(Region*& head, Region* r) {
  if (r->prev)
    r->prev->next = r->next;
  else
    head = r->next;
  if (r->next) r->next->prev = r->prev;
  r->next = r->prev = nullptr;
  r->list = RegionList::kNone;
}

// --- cold operations (region.cc) ---
Region* region_create(unsigned slot) noexcept;  // nullptr: out of memory
// Released: out of the region map and the registry, to the large-run cache (its pages kept
// for the purge delay, or with !keep_pages given back now).
void region_release(Region* r, bool keep_pages = true) noexcept;
// Resets every slab to uncarved; with `decommit_pages` (the region is empty), gives the
// pages of carved slabs and of the state map back.
void region_reset(Region* r, bool decommit_pages) noexcept;
// The region is empty: resets every slab but `keep` and gives their pages and the state
// map's back in at most three calls (the pages `keep`'s blocks and state entries touch
// stay, with its free lists).
void region_reset_except(Region* r, unsigned keep) noexcept;
// Carves up to `max` never-used blocks of `slab` into a list (nullptr if none left).
FreeBlock* region_carve_list(Region* r, unsigned slab, uint32_t max) noexcept;
// Returns a free block (state already kFree) to its slab's free list.
HAK_INLINE void region_put(Region* r, void* p) noexcept {
  unsigned slab = arith::slab_index<NativeWord>(reinterpret_cast<uintptr_t>(p) - r->base());
  SlabMeta& m = r->slabs[slab];
  FreeBlock* b = static_cast<FreeBlock*>(p);
  link_set(b, m.free);
  m.free = b;
  r->slab_free_mask |= 1u << slab;
}
// Takes the remote list back into the slabs. Returns the number of blocks collected.
// Caller is the owner, or holds the orphan lock for an ownerless region.
uint32_t region_collect(Region* r, uintptr_t list) noexcept;
// SPEC's pending count: the remote frees not yet collected, the blocks in state kRemote.
// No counter keeps it (a locked add on every remote free cost bench_xthread 10-12%): a
// scan of the state map, skipped while the remote list is empty (0 then, but for a push
// under way). For inspect and statistics; the empty rule reads active_local alone.
uint32_t region_pending(const Region* r) noexcept;
// The blocks in state kRemote, whatever the remote list holds (the fork repair).
uint32_t region_remote_blocks(const Region* r) noexcept;
// A fork child's repair of a region whose owner did not survive the fork (and may have
// stopped in the middle of any owner operation): the slab lists, live count and remote
// state are rebuilt from the state map alone. A block is live when it is kLive (a
// kRemote block, listed or caught mid-push, is free: that remote free completes here). Returns the
// live count. Caller holds the orphan lock.
uint32_t region_rebuild(Region* r) noexcept;
// Whether a slab has a block to give.
HAK_INLINE bool region_slab_has_free(const Region* r, unsigned slab) {
  return ((r->slab_free_mask | r->slab_uncarved_mask) >> slab) & 1;
}

// Classifies a pointer that failed the block-start check, for the error message.
const char* region_bad_reason(const Region* r, uintptr_t off) noexcept;
// A grid position whose state is not kLive: outside the blocks, or `fallback`.
const char* region_state_reason(const Region* r, uintptr_t off, const char* fallback) noexcept;

struct RegionCounters {
  uint64_t live[3], mapped_total[3], released_total[3];  // [0] SUPERSLAB, [1] MID, [2] ULTRA
};
RegionCounters region_counters() noexcept;

}  // namespace hak
