// Where memalign(align, size) goes (model/SPEC.md section 2), over a word policy
// (common/word.h): production runs it with NativeWord (api.cc memalign_glibc), formal/z3
// proves it with bit-vectors. The route is the decision only; api.cc makes the call.
#pragma once

#include <stdint.h>

#include <cstddef>
#include <tuple>

#include "common/base.h"
#include "tiny/size_class.h"

namespace hak {

// The largest request: glibc's PTRDIFF_MAX (larger fail with ENOMEM).
inline constexpr size_t kMaxRequest = PTRDIFF_MAX;

namespace arith {

inline constexpr uint32_t kRouteMalloc = 0;  // malloc(size): a class block, or large
inline constexpr uint32_t kRouteLarge = 1;   // large_malloc(size, align)
inline constexpr uint32_t kRouteEinval = 2;  // fails with EINVAL
inline constexpr uint32_t kRouteEnomem = 3;  // fails with ENOMEM

template <class W>
struct MemalignRoute {
  word32<W> kind;
  word64<W> size;   // the request for kRouteMalloc and kRouteLarge
  word64<W> align;  // kRouteLarge only
  // The members, for the z3 policy (it joins the routes of several paths member by member).
  auto fields() { return std::tie(kind, size, align); }
};

// `align` a power of two > 16.
template <class W>
HAK_INLINE MemalignRoute<W> aligned_route(word64<W> align, word64<W> size) {
  if (size > kMaxRequest - align) return {kRouteEnomem, 0, 0};
  word64<W> s = size < align ? align : size;
  // Tiny blocks sit on a grid from a 2 MiB-aligned base: of their (power-of-two) size up to
  // 256 B, of their size and a cache line above (class_stride: 64-byte aligned), so a
  // larger alignment of those sizes takes a mid block.
  if (s <= kTinyMax) {
    if (s <= kTinyPow2GridMax || align <= kGridLine) return {kRouteMalloc, s, 0};
    s = kTinyMax + 1;
  }
  if (s <= kMidMax) {
    if (align <= 256) return {kRouteMalloc, s, 0};  // every mid size is a multiple of 256
    word64<W> p2 = size_t{1} << (64 - W::clz64(s - 1));
    if (p2 <= kMidMax) return {kRouteMalloc, p2, 0};  // powers of two are mid classes too
  }
  return {kRouteLarge, size, align};
}

// glibc's _mid_memalign (2.36): small alignments are malloc; others round up to a power of two.
template <class W>
HAK_INLINE MemalignRoute<W> memalign_route(word64<W> align, word64<W> size) {
  if (align <= 16) return {kRouteMalloc, size < align ? align : size, 0};
  if (align > SIZE_MAX / 2 + 1) return {kRouteEinval, 0, 0};
  if (!is_pow2<W>(align)) {
    word64<W> a = 32;
    while (a < align) a <<= 1;
    align = a;
  }
  return aligned_route<W>(align, size);
}

}  // namespace arith
}  // namespace hak
