// Word policies: hakmem's address and size arithmetic is written once, as templates over a
// word policy W, so that the code production runs is the code formal/z3 proves. Production
// instantiates the templates with NativeWord (plain machine integers: the same code as if
// the templates were written with uint64_t directly); formal/z3/z3_word.h instantiates
// them with z3 bit-vector expressions.
//
// What a policy W provides (the whole surface the templates may use):
//   W::u8, W::u32, W::u64   unsigned words of 8, 32 and 64 bits (uintptr_t and size_t are
//                           W::u64 here); constructible from an integer constant.
//   W::boolean              the result of a comparison; constructible from true / false,
//                           usable as a condition.
//   operators on words      + - * / % & | ^ ~ << >> (and their compound assignments)
//                           == != < <= > >=, and ! && || on booleans, with C++'s meaning for
//                           unsigned operands: modular, mixed widths widen the narrower
//                           operand (the usual arithmetic conversions), integer constants
//                           take the width of their type. u8 takes part only as a shift count
//                           or through to_u32 / to_u64.
//   control flow            if, ?:, while and return on booleans, as in plain code (also
//                           HAK_LIKELY / HAK_UNLIKELY). The z3 policy runs a template once per
//                           feasible path and joins the results (formal::all_paths).
//   W::to_u8/to_u32/to_u64(x)      static_cast to that width (truncates or zero-extends).
//   W::clz32(x), W::clz64(x)       __builtin_clz / __builtin_clzll as unsigned (x != 0).
//   W::lookup(table, i)            table[i] of a constant array (i < its size).
// Undefined behaviour (a shift count >= the width, a division by zero, clz of 0, an index
// outside a table) is the caller's to rule out: the z3 policy records each such condition
// as a proof obligation on the path that reaches it.
// Structs returned by templates list their members in fields(), so that the z3 policy can
// join the values of several paths member by member.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hak {

// The machine policy. Every member is a plain expression on integers, constexpr and forced
// inline, so a template instantiated with it compiles as if written with the integers (it
// is: the same text, with word64<W> for uint64_t).
struct NativeWord {
  using u8 = uint8_t;
  using u32 = uint32_t;
  using u64 = uint64_t;
  using boolean = bool;

  template <class T>
  static constexpr inline __attribute__((always_inline)) u8 to_u8(T x) {
    return static_cast<u8>(x);
  }
  template <class T>
  static constexpr inline __attribute__((always_inline)) u32 to_u32(T x) {
    return static_cast<u32>(x);
  }
  template <class T>
  static constexpr inline __attribute__((always_inline)) u64 to_u64(T x) {
    return static_cast<u64>(x);
  }
  static constexpr inline __attribute__((always_inline)) unsigned clz32(u32 x) {
    return static_cast<unsigned>(__builtin_clz(x));
  }
  static constexpr inline __attribute__((always_inline)) unsigned clz64(u64 x) {
    return static_cast<unsigned>(__builtin_clzll(x));
  }
  template <class T, size_t N, class I>
  static constexpr inline __attribute__((always_inline)) T lookup(const T (&table)[N], I i) {
    return table[i];
  }
};

// Shorthands for the templates: word64<W> is W's 64-bit word, and so on.
template <class W>
using word8 = typename W::u8;
template <class W>
using word32 = typename W::u32;
template <class W>
using word64 = typename W::u64;
template <class W>
using boolean = typename W::boolean;

}  // namespace hak
