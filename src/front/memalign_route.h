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
  // The members in order, for policies whose select() builds a value member by member.
  auto fields() { return std::tie(kind, size, align); }
};

// `align` a power of two > 16. Tiny blocks sit on a grid of their (power-of-two) size from
// a 2 MiB-aligned base; every mid size is a multiple of 256, and the powers of two from
// 2 KiB to 256 KiB are mid classes: those serve the larger alignments up to 256 KiB.
template <class W>
HAK_INLINE MemalignRoute<W> aligned_route(word64<W> align, word64<W> size) {
  using Route = MemalignRoute<W>;
  return W::select(
      size > kMaxRequest - align,
      [&] {
        return Route{kRouteEnomem, 0, 0};
      },
      [&] {
        word64<W> s = W::select(
            size < align, [&] { return align; }, [&] { return size; });
        Route large{kRouteLarge, size, align};
        return W::select(
            s <= kTinyMax,
            [&] {
              return Route{kRouteMalloc, s, 0};
            },
            [&] {
              return W::select(
                  s <= kMidMax,
                  [&] {
                    return W::select(
                        align <= 256,
                        [&] {
                          return Route{kRouteMalloc, s, 0};
                        },
                        [&] {
                          word64<W> p2 = size_t{1} << (64 - W::clz64(s - 1));
                          return W::select(
                              p2 <= kMidMax,
                              [&] {
                                return Route{kRouteMalloc, p2, 0};
                              },
                              [&] { return large; });
                        });
                  },
                  [&] { return large; });
            });
      });
}

// glibc's _mid_memalign (2.36): small alignments are malloc; others round up to a power of
// two (at least 32, as align > 16 there).
template <class W>
HAK_INLINE MemalignRoute<W> memalign_route(word64<W> align, word64<W> size) {
  using Route = MemalignRoute<W>;
  return W::select(
      align <= 16,
      [&] {
        return Route{kRouteMalloc,
                     W::select(
                         size < align, [&] { return align; }, [&] { return size; }),
                     0};
      },
      [&] {
        return W::select(
            align > SIZE_MAX / 2 + 1,
            [&] {
              return Route{kRouteEinval, 0, 0};
            },
            [&] {
              word64<W> a = W::select(
                  is_pow2<W>(align), [&] { return align; },
                  [&] { return size_t{1} << (64 - W::clz64(align - 1)); });
              return aligned_route<W>(a, size);
            });
      });
}

}  // namespace arith
}  // namespace hak
