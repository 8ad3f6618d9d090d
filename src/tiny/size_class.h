// Size classes. C0..C7 are the seed's tiny classes (8..1024 B, powers of two); classes
// 8..39 are the mid classes, four per doubling from 1280 B to 256 KiB, so a mid block
// wastes at most 25% of its size. Both are served by class regions (kinds SUPERSLAB / MID:
// src/region/region.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/base.h"

namespace hak {

inline constexpr unsigned kTinyClasses = 8;
inline constexpr unsigned kMidClasses = 32;
inline constexpr unsigned kNumClasses = kTinyClasses + kMidClasses;
inline constexpr size_t kTinyMax = 1024;
inline constexpr size_t kMidMax = size_t{256} << 10;
inline constexpr unsigned kC7 = 7;

namespace arith {
// The block size of class c (c < kNumClasses), over a word policy (common/word.h).
template <class W>
HAK_INLINE constexpr word64<W> class_size_calc(word32<W> c) {
  if (c < kTinyClasses) return size_t{8} << c;
  word32<W> m = c - kTinyClasses;  // 0..31
  word32<W> e = 11 + m / 4;        // group (2^(e-1), 2^e]
  word64<W> step = size_t{1} << (e - 3);
  return (size_t{1} << (e - 1)) + (m % 4 + 1) * step;
}
}  // namespace arith

inline constexpr size_t class_size_calc(unsigned c) {
  return arith::class_size_calc<NativeWord>(c);
}

// The grid step of class c's blocks in a region: the class size, and one cache line more
// for C6 and C7 (512 and 1024 B; the line past the block is never handed out). On a grid
// of 512 or 1024 bytes every block starts on 1/8 or 1/16 of a cache's sets (the address
// bits 6..9 that pick them are the same), so a working set of them evicts itself: 8192
// random slots of 16..1024 B (bench_mixed --ws 8192) missed a 1 MiB L2 0.84 times per
// malloc+free (cachegrind), 0.00 on the 576 and 1088-byte grids, whose first lines take
// every set. Smaller classes keep their power-of-two grid (memalign relies on it, SPEC
// section 2); C6 and C7 blocks are 64-byte aligned.
inline constexpr unsigned kFirstLineGridClass = 6;
inline constexpr size_t kGridLine = 64;
inline constexpr size_t class_stride_calc(unsigned c) {
  return class_size_calc(c) + (c >= kFirstLineGridClass && c < kTinyClasses ? kGridLine : 0);
}
// The largest tiny size whose class keeps the power-of-two grid.
inline constexpr size_t kTinyPow2GridMax = size_t{8} << (kFirstLineGridClass - 1);

struct ClassTable {
  uint32_t size[kNumClasses];
  uint32_t stride[kNumClasses];             // the grid step (class_stride_calc)
  uint8_t tiny_by_qword[kTinyMax / 8 + 1];  // (size + 7) / 8 -> class, for size <= 1024
  uint8_t mid_by_256[kMidMax / 256 + 1];    // (size + 255) / 256 -> class, for size > 1024
                                            // (1 KiB; a program touches the lines of its sizes)
  constexpr ClassTable() : size{}, stride{}, tiny_by_qword{}, mid_by_256{} {
    for (unsigned c = 0; c < kNumClasses; ++c) {
      size[c] = static_cast<uint32_t>(class_size_calc(c));
      stride[c] = static_cast<uint32_t>(class_stride_calc(c));
    }
    for (unsigned q = 0; q <= kTinyMax / 8; ++q) {
      size_t s = q * 8;
      unsigned c = 0;
      while (class_size_calc(c) < s) ++c;
      tiny_by_qword[q] = static_cast<uint8_t>(c);
    }
    for (unsigned q = 0, c = 0; q <= kMidMax / 256; ++q) {
      while (class_size_calc(c) < q * 256) ++c;
      mid_by_256[q] = static_cast<uint8_t>(c);
    }
  }
};
inline constexpr ClassTable kClasses{};

HAK_INLINE constexpr size_t class_size(unsigned c) {
  return kClasses.size[c];
}
HAK_INLINE constexpr size_t class_stride(unsigned c) {
  return kClasses.stride[c];
}

namespace arith {
// Class for a request of `size` bytes; only for size <= kMidMax. Both read a table: every
// mid class size is a multiple of 256, so a mid size's class is that of its 256-byte
// step. (Finding the doubling and its quarter with a clz took 14 instructions, a
// dependent chain, per mid malloc: bench_mixed --min 513 --max 4096, 1.17x with the table.)
template <class W>
HAK_INLINE word32<W> size_to_class(word64<W> size) {
  if (HAK_LIKELY(size <= kTinyMax))
    return W::to_u32(W::lookup(kClasses.tiny_by_qword, (size + 7) >> 3));
  return W::to_u32(W::lookup(kClasses.mid_by_256, (size + 255) >> 8));
}
}  // namespace arith

// Class for a request of `size` bytes; only for size <= kMidMax.
HAK_INLINE unsigned size_to_class(size_t size) {
  return arith::size_to_class<NativeWord>(size);
}

HAK_INLINE constexpr bool class_is_tiny(unsigned c) {
  return c < kTinyClasses;
}

// A slot is where a region's blocks come from: one per class (kind SUPERSLAB for tiny,
// MID for mid) plus the ULTRA slot (C7 on ULTRA segments). Per-context lists, warm
// counts and the orphan pools are per slot.
inline constexpr unsigned kUltraSlot = kNumClasses;
inline constexpr unsigned kNumSlots = kNumClasses + 1;
HAK_INLINE constexpr unsigned slot_class(unsigned s) {
  return s == kUltraSlot ? kC7 : s;
}

// Size (<= 1024) -> slot, indexed by the size. C7 sizes map to kUltraSlot while ULTRA is
// on (set_c7_ultra); the table is the only switch the malloc fast path sees.
extern std::array<uint8_t, kTinyMax + 1> g_tiny_slot;
void set_c7_ultra(bool on) noexcept;

// Slot for a request of `size` bytes; only for size <= kMidMax.
HAK_INLINE unsigned size_to_slot(size_t size) {
  if (HAK_LIKELY(size <= kTinyMax)) return g_tiny_slot[size];
  return size_to_class(size);
}

}  // namespace hak
