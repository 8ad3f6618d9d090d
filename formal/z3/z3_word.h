// The z3 word policy (src/common/word.h): hakmem's arithmetic templates instantiated with
// it build z3 bit-vector terms instead of computing numbers. Words are Bv<N> (N = 8, 32,
// 64), comparisons are Pred. The operators give C++'s meaning for unsigned operands,
// written out here once:
//   - operands narrower than 32 bits are promoted to 32 (u8 only ever holds small values:
//     C++ promotes it to int, the same numbers);
//   - mixed widths widen the narrower operand by zero extension; an integer constant has
//     the width of its type (at least 32) and its value taken modulo 2^width;
//   - + - * & | ^ ~ are modular; / and % are unsigned (bvudiv, bvurem) and a divisor of
//     zero is an obligation; < <= > >= are the unsigned comparisons (z3::ult...), never
//     z3's signed operator<;
//   - a << n and a >> n shift the promoted a (>> is logical: lshr); n < width of the
//     promoted a is an obligation.
// Obligations (conditions without which the C++ code has undefined behaviour) are recorded
// with the path condition of the select()s that lead to them; a proof then asks z3 for an
// input that breaks the claim or any obligation (formal/z3/prove_arith.cc).
#pragma once

#include <z3++.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace formal {

// One context for the whole program: every term lives in it.
inline z3::context& ctx() {
  static z3::context c;
  return c;
}

struct Obligation {
  z3::expr holds;  // path condition implies the requirement
  std::string what;
};
// The path condition (one entry per enclosing select branch) and the obligations so far.
struct Trace {
  std::vector<z3::expr> path;
  std::vector<Obligation> obligations;
};
inline Trace& trace() {
  static Trace t;
  return t;
}
inline z3::expr path_condition() {
  z3::expr p = ctx().bool_val(true);
  for (const z3::expr& c : trace().path) p = p && c;
  return p;
}
inline void require(const z3::expr& cond, std::string what) {
  trace().obligations.push_back({z3::implies(path_condition(), cond), std::move(what)});
}

template <unsigned N>
struct Bv;

template <class T>
struct BvWidth {
  static constexpr unsigned value = 0;  // not a Bv
};
template <unsigned N>
struct BvWidth<Bv<N>> {
  static constexpr unsigned value = N;
};
template <class T>
inline constexpr bool kIsBv = BvWidth<T>::value != 0;

// A word of N bits.
template <unsigned N>
struct Bv {
  static_assert(N == 8 || N == 32 || N == 64);
  z3::expr e;
  explicit Bv(const z3::expr& x) : e(x) {}
  // An integer constant, converted as C++ converts it to an N-bit unsigned type.
  template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  Bv(T v)  // NOLINT: implicit, as for integers
      : e(ctx().bv_val(static_cast<uint64_t>(v) & mask(), N)) {}
  // Widening is implicit (zero extension), as for unsigned integers.
  template <unsigned M, std::enable_if_t<(M < N), int> = 0>
  Bv(const Bv<M>& o)  // NOLINT
      : e(z3::zext(o.e, N - M)) {}
  static constexpr uint64_t mask() { return N == 64 ? ~uint64_t{0} : (uint64_t{1} << N) - 1; }
};

// A comparison result, or a constant truth value.
struct Pred {
  z3::expr e;
  explicit Pred(const z3::expr& x) : e(x) {}
  Pred(bool b) : e(ctx().bool_val(b)) {}  // NOLINT
};
inline Pred operator!(const Pred& a) {
  return Pred(!a.e);
}
inline Pred operator&&(const Pred& a, const Pred& b) {
  return Pred(a.e && b.e);
}
inline Pred operator||(const Pred& a, const Pred& b) {
  return Pred(a.e || b.e);
}
inline Pred operator==(const Pred& a, const Pred& b) {
  return Pred(a.e == b.e);
}
inline Pred operator!=(const Pred& a, const Pred& b) {
  return Pred(a.e != b.e);
}

// The width of an operand after integer promotion.
template <class T>
constexpr unsigned promoted_width() {
  if constexpr (kIsBv<T>)
    return std::max(32u, BvWidth<T>::value);
  else
    return std::max(32u, static_cast<unsigned>(8 * sizeof(T)));
}
template <class T>
inline constexpr bool kIsOperand = kIsBv<T> || std::is_integral_v<T>;
template <class A, class B>
inline constexpr bool kIsBvOperation = kIsOperand<A>&& kIsOperand<B> && (kIsBv<A> || kIsBv<B>);

// x as a word of N >= its width bits.
template <unsigned N, class T>
Bv<N> widen(const T& x) {
  if constexpr (kIsBv<T>) {
    constexpr unsigned m = BvWidth<T>::value;
    static_assert(m <= N);
    if constexpr (m == N)
      return x;
    else
      return Bv<N>(z3::zext(x.e, N - m));
  } else {
    return Bv<N>(x);
  }
}
// x as a word of exactly N bits: static_cast (truncation or zero extension).
template <unsigned N, class T>
Bv<N> resize(const T& x) {
  if constexpr (kIsBv<T>) {
    constexpr unsigned m = BvWidth<T>::value;
    if constexpr (m > N)
      return Bv<N>(x.e.extract(N - 1, 0));
    else
      return widen<N>(x);
  } else {
    return Bv<N>(x);
  }
}

template <class A, class B>
inline constexpr unsigned kCommonWidth = std::max(promoted_width<A>(), promoted_width<B>());

#define FORMAL_BV_BINARY(op, build)                                            \
  template <class A, class B, std::enable_if_t<kIsBvOperation<A, B>, int> = 0> \
  Bv<kCommonWidth<A, B>> operator op(const A& a, const B& b) {                 \
    constexpr unsigned n = kCommonWidth<A, B>;                                 \
    z3::expr x = widen<n>(a).e, y = widen<n>(b).e;                             \
    return Bv<n>(build);                                                       \
  }
FORMAL_BV_BINARY(+, x + y)
FORMAL_BV_BINARY(-, x - y)
FORMAL_BV_BINARY(*, x* y)
FORMAL_BV_BINARY(&, x& y)
FORMAL_BV_BINARY(|, x | y)
FORMAL_BV_BINARY(^, x ^ y)
#undef FORMAL_BV_BINARY

#define FORMAL_BV_DIVISION(op, fn, name)                                       \
  template <class A, class B, std::enable_if_t<kIsBvOperation<A, B>, int> = 0> \
  Bv<kCommonWidth<A, B>> operator op(const A& a, const B& b) {                 \
    constexpr unsigned n = kCommonWidth<A, B>;                                 \
    z3::expr x = widen<n>(a).e, y = widen<n>(b).e;                             \
    require(y != 0, name " by zero");                                          \
    return Bv<n>(z3::fn(x, y));                                                \
  }
FORMAL_BV_DIVISION(/, udiv, "division")
FORMAL_BV_DIVISION(%, urem, "remainder")
#undef FORMAL_BV_DIVISION

#define FORMAL_BV_COMPARE(op, build)                                           \
  template <class A, class B, std::enable_if_t<kIsBvOperation<A, B>, int> = 0> \
  Pred operator op(const A& a, const B& b) {                                   \
    constexpr unsigned n = kCommonWidth<A, B>;                                 \
    z3::expr x = widen<n>(a).e, y = widen<n>(b).e;                             \
    return Pred(build);                                                        \
  }
FORMAL_BV_COMPARE(==, x == y)
FORMAL_BV_COMPARE(!=, x != y)
FORMAL_BV_COMPARE(<, z3::ult(x, y))
FORMAL_BV_COMPARE(<=, z3::ule(x, y))
FORMAL_BV_COMPARE(>, z3::ugt(x, y))
FORMAL_BV_COMPARE(>=, z3::uge(x, y))
#undef FORMAL_BV_COMPARE

// The shift count as a word of the shifted width, after the obligation count < width.
template <unsigned N, class C>
z3::expr shift_count(const C& count) {
  if constexpr (kIsBv<C>) {
    constexpr unsigned m = BvWidth<C>::value;
    z3::expr c = count.e;
    // m >= 8 bits hold N <= 64.
    require(z3::ult(c, ctx().bv_val(N, m)), "shift count below the width");
    if constexpr (m < N)
      return z3::zext(c, N - m);
    else if constexpr (m > N)
      return c.extract(N - 1, 0);
    else
      return c;
  } else {
    bool in_range = static_cast<uint64_t>(count) < N;
    if constexpr (std::is_signed_v<C>) in_range = in_range && count >= 0;
    require(ctx().bool_val(in_range), "shift count below the width");
    return ctx().bv_val(static_cast<uint64_t>(count) & (N - 1), N);
  }
}
template <class A, class C, std::enable_if_t<kIsBvOperation<A, C>, int> = 0>
Bv<promoted_width<A>()> operator<<(const A& a, const C& count) {
  constexpr unsigned n = promoted_width<A>();
  return Bv<n>(z3::shl(widen<n>(a).e, shift_count<n>(count)));
}
template <class A, class C, std::enable_if_t<kIsBvOperation<A, C>, int> = 0>
Bv<promoted_width<A>()> operator>>(const A& a, const C& count) {
  constexpr unsigned n = promoted_width<A>();
  return Bv<n>(z3::lshr(widen<n>(a).e, shift_count<n>(count)));
}
template <unsigned N>
Bv<std::max(32u, N)> operator~(const Bv<N>& a) {
  return Bv<std::max(32u, N)>(~widen<std::max(32u, N)>(a).e);
}

// c ? a : b for words, predicates, and structs that list their members with fields().
template <class T>
T ite_value(const Pred& c, const T& a, const T& b);
template <class Tuple, size_t... I>
void ite_fields(const Pred& c, Tuple r, Tuple b, std::index_sequence<I...>) {
  ((std::get<I>(r) = ite_value(c, std::get<I>(r), std::get<I>(b))), ...);
}
template <class T>
T ite_value(const Pred& c, const T& a, const T& b) {
  if constexpr (kIsBv<T>) {
    return T(z3::ite(c.e, a.e, b.e));
  } else if constexpr (std::is_same_v<T, Pred>) {
    return Pred(z3::ite(c.e, a.e, b.e));
  } else {
    T r = a, other = b;
    auto rf = r.fields();
    ite_fields(c, rf, other.fields(), std::make_index_sequence<std::tuple_size_v<decltype(rf)>>{});
    return r;
  }
}

// clz of an N-bit word, as unsigned: the index of the highest set bit from the top.
template <unsigned N>
Bv<32> count_leading_zeros(const Bv<N>& x) {
  require(x.e != 0, "clz of a non-zero word");
  z3::expr r = ctx().bv_val(N, 32);       // unreachable under the obligation
  for (unsigned bit = 0; bit < N; ++bit)  // the highest set bit wins: built last, tested first
    r = z3::ite(x.e.extract(bit, bit) == ctx().bv_val(1, 1), ctx().bv_val(N - 1 - bit, 32), r);
  return Bv<32>(r);
}

struct Z3Word {
  using u8 = Bv<8>;
  using u32 = Bv<32>;
  using u64 = Bv<64>;
  using boolean = Pred;

  template <class F, class G>
  static auto select(const Pred& c, F f, G g) {
    trace().path.push_back(c.e);
    auto a = f();
    trace().path.back() = !c.e;
    auto b = g();
    trace().path.pop_back();
    static_assert(std::is_same_v<decltype(a), decltype(b)>, "select: both arms of one type");
    return ite_value(c, a, b);
  }
  static Pred likely(const Pred& c) { return c; }
  static Pred unlikely(const Pred& c) { return c; }
  template <class T>
  static u8 to_u8(const T& x) {
    return resize<8>(x);
  }
  template <class T>
  static u32 to_u32(const T& x) {
    return resize<32>(x);
  }
  template <class T>
  static u64 to_u64(const T& x) {
    return resize<64>(x);
  }
  static u32 clz32(const u32& x) { return count_leading_zeros(x); }
  static u32 clz64(const u64& x) { return count_leading_zeros(x); }
  // table[i] of a constant table, as an ite chain over its entries.
  template <class T, size_t N, class I>
  static Bv<8 * sizeof(T)> lookup(const T (&table)[N], const I& i) {
    constexpr unsigned w = 8 * sizeof(T);
    Bv<64> index = widen<64>(i);
    require(z3::ult(index.e, ctx().bv_val(uint64_t{N}, 64)), "table index inside the table");
    z3::expr r = ctx().bv_val(uint64_t{table[N - 1]}, w);
    for (size_t k = N - 1; k-- > 0;)
      r = z3::ite(index.e == ctx().bv_val(uint64_t{k}, 64),
                  ctx().bv_val(static_cast<uint64_t>(table[k]), w), r);
    return Bv<w>(r);
  }
};

}  // namespace formal
