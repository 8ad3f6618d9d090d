// The z3 word policy (src/common/word.h): hakmem's arithmetic templates instantiated with
// it build z3 bit-vector terms instead of computing numbers. Words are Bv<N> (N = 8, 32,
// 64), comparisons are Pred. The operators give C++'s meaning for unsigned operands,
// written out here once:
//   - operands are at least 32 bits wide: a u8 may only be a shift count (C++ would promote
//     it to signed int; static_asserts keep it out of every other operator);
//   - mixed widths widen the narrower operand by zero extension; an integer constant has
//     the width of its type (at least 32) and its value taken modulo 2^width;
//   - + - * & | ^ ~ are modular; / and % are unsigned (bvudiv, bvurem) and a divisor of
//     zero is an obligation; < <= > >= are the unsigned comparisons (z3::ult...), never
//     z3's signed operator<;
//   - a << n and a >> n shift the promoted a (>> is logical: lshr); n < width of the
//     promoted a is an obligation.
// Control flow: a template's if / ?: / while on a symbolic condition is a decision. A
// template runs inside all_paths(f), which runs f once per feasible sequence of decisions
// (depth first; z3 says which ways a decision can go under the path so far) and joins the
// results with ite on the path conditions. A decision whose condition simplifies to a
// constant is not one (concrete inputs run once, anywhere).
// Obligations (conditions without which the C++ code has undefined behaviour) are recorded
// with the condition of the path that reaches them; a proof then asks z3 for an input that
// breaks the claim or any obligation (formal/z3/prove_arith.cc).
#pragma once

#include <z3++.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
// The path condition (one entry per decision taken so far) and the obligations so far.
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
  // if (word): word != 0, a decision.
  explicit operator bool() const;
};

// A comparison result, or a constant truth value.
struct Pred {
  z3::expr e;
  explicit Pred(const z3::expr& x) : e(x) {}
  Pred(bool b) : e(ctx().bool_val(b)) {}  // NOLINT
  // A decision (implicit, so that HAK_LIKELY's __builtin_expect takes it too): which way
  // this run of all_paths goes.
  operator bool() const;  // NOLINT
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

// C++ promotes a uint8_t operand to (signed) int, which this model does not follow: the
// templates use u8 only as a shift count (word.h), and every operator checks that.
template <class T>
inline constexpr bool kNotU8 = BvWidth<T>::value != 8;
template <class A, class B>
inline constexpr unsigned kCommonWidth = [] {
  static_assert(kNotU8<A> && kNotU8<B>, "u8 takes part only as a shift count");
  return std::max(promoted_width<A>(), promoted_width<B>());
}();

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
  static_assert(kNotU8<A>, "u8 takes part only as a shift count");
  constexpr unsigned n = promoted_width<A>();
  return Bv<n>(z3::shl(widen<n>(a).e, shift_count<n>(count)));
}
template <class A, class C, std::enable_if_t<kIsBvOperation<A, C>, int> = 0>
Bv<promoted_width<A>()> operator>>(const A& a, const C& count) {
  static_assert(kNotU8<A>, "u8 takes part only as a shift count");
  constexpr unsigned n = promoted_width<A>();
  return Bv<n>(z3::lshr(widen<n>(a).e, shift_count<n>(count)));
}
template <unsigned N>
Bv<std::max(32u, N)> operator~(const Bv<N>& a) {
  static_assert(N != 8, "u8 takes part only as a shift count");
  return Bv<std::max(32u, N)>(~widen<std::max(32u, N)>(a).e);
}

#define FORMAL_BV_ASSIGN(op)                                                       \
  template <unsigned N, class B, std::enable_if_t<kIsOperand<B>, int> = 0>         \
  Bv<N>& operator op##=(Bv<N>& a, const B& b) {                                    \
    a = resize<N>(a op b); /* C++: computed at the common width, converted back */ \
    return a;                                                                      \
  }
FORMAL_BV_ASSIGN(+)
FORMAL_BV_ASSIGN(-)
FORMAL_BV_ASSIGN(*)
FORMAL_BV_ASSIGN(&)
FORMAL_BV_ASSIGN(|)
FORMAL_BV_ASSIGN(<<)
FORMAL_BV_ASSIGN(>>)
#undef FORMAL_BV_ASSIGN

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

// --- decisions and all_paths ---

struct Explorer {
  bool active = false;
  uint64_t paths = 0, feasibility_checks = 0;  // totals, for the report
  std::vector<bool> taken;                     // the decisions of the current run, in order
  std::vector<bool> both_ways;                 // whether the other way was feasible too
  size_t next = 0;                             // index of the next decision in this run
};
inline Explorer& explorer() {
  static Explorer x;
  return x;
}
inline bool feasible(const z3::expr& c) {
  ++explorer().feasibility_checks;
  z3::solver s(ctx());
  s.add(path_condition() && c);
  return s.check() != z3::unsat;
}
// Every loop in the templates ends within 64 iterations: a path this long is a loop that
// does not end (or one that takes too long to explore). Reported with an input on it.
inline constexpr size_t kMaxDecisions = 1000;
[[noreturn]] inline void too_many_decisions() {
  std::printf("  FAILED  a path of more than %zu decisions (a loop that does not end?)\n",
              kMaxDecisions);
  z3::solver s(ctx());
  s.add(path_condition());
  if (s.check() == z3::sat) {
    z3::model m = s.get_model();
    std::printf("    an input on it:\n");
    for (unsigned i = 0; i < m.size(); ++i) {
      z3::func_decl d = m[i];
      z3::expr v = m.get_const_interp(d);
      uint64_t n = v.is_numeral() ? v.get_numeral_uint64() : 0;
      std::printf("      %-22s 0x%" PRIx64 " (%" PRIu64 ")\n", d.name().str().c_str(), n, n);
    }
  }
  std::fflush(stdout);
  std::_Exit(1);
}
inline bool decide(const z3::expr& cond) {
  z3::expr c = cond.simplify();
  if (c.is_true()) return true;
  if (c.is_false()) return false;
  Explorer& x = explorer();
  if (!x.active) {
    std::fprintf(stderr, "formal: a decision on a symbolic value outside all_paths\n");
    std::abort();
  }
  if (x.next >= kMaxDecisions) too_many_decisions();
  bool d;
  if (x.next < x.taken.size()) {
    d = x.taken[x.next];  // replaying the prefix of the path being explored
  } else {
    bool can_true = feasible(c), can_false = feasible(!c);
    d = can_true || !can_false;
    x.taken.push_back(d);
    x.both_ways.push_back(can_true && can_false);
  }
  ++x.next;
  trace().path.push_back(d ? c : !c);
  return d;
}
inline Pred::operator bool() const {
  return decide(e);
}
template <unsigned N>
Bv<N>::operator bool() const {
  return decide(e != 0);
}

// f() on every feasible path, joined: ite(path 1, value 1, ite(path 2, value 2, ...)). The
// paths are disjoint and cover every input, so the join is f's value.
template <class F>
auto all_paths(F f) {
  Explorer& x = explorer();
  if (x.active) {
    std::fprintf(stderr, "formal: all_paths does not nest\n");
    std::abort();
  }
  x.active = true;
  x.taken.clear();
  x.both_ways.clear();
  using Value = decltype(f());
  std::vector<std::pair<z3::expr, Value>> paths;
  for (;;) {
    x.next = 0;
    trace().path.clear();
    Value v = f();
    paths.emplace_back(path_condition(), v);
    ++x.paths;
    // The next path: flip the last decision that could go the other way and has not yet.
    x.taken.resize(x.next);
    x.both_ways.resize(x.next);
    while (!x.taken.empty() && !(x.both_ways.back() && x.taken.back())) {
      x.taken.pop_back();
      x.both_ways.pop_back();
    }
    if (x.taken.empty()) break;
    x.taken.back() = false;
  }
  trace().path.clear();
  x.active = false;
  Value joined = paths.back().second;
  for (size_t i = paths.size() - 1; i-- > 0;)
    joined = ite_value(Pred(paths[i].first), paths[i].second, joined);
  return joined;
}

}  // namespace formal
