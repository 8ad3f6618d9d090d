// Compiled by g++ running under libhakmem.so (preload.gxx), then run without hakmem.
// Enough templates and standard library to make cc1plus allocate a lot; its output is
// checked against values the test driver computes independently.
#include <algorithm>
#include <array>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

namespace {

template <typename T, std::size_t N>
struct Matrix {
  std::array<std::array<T, N>, N> m{};
  static constexpr Matrix identity() {
    Matrix r;
    for (std::size_t i = 0; i < N; ++i) r.m[i][i] = T{1};
    return r;
  }
  constexpr Matrix operator*(const Matrix& o) const {
    Matrix r;
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t k = 0; k < N; ++k)
        for (std::size_t j = 0; j < N; ++j) r.m[i][j] += m[i][k] * o.m[k][j];
    return r;
  }
};

template <typename M>
constexpr M power(M base, unsigned e) {
  M r = M::identity();
  while (e) {
    if (e & 1) r = r * base;
    base = base * base;
    e >>= 1;
  }
  return r;
}

constexpr std::uint64_t fib(unsigned n) {
  Matrix<std::uint64_t, 2> f;
  f.m = {{{1, 1}, {1, 0}}};
  return power(f, n).m[0][1];
}
static_assert(fib(10) == 55);

template <typename Container>
auto sum_of(const Container& c) {
  using V = typename Container::value_type;
  return std::accumulate(c.begin(), c.end(), V{});
}

std::vector<std::uint64_t> primes_below(std::uint64_t n) {
  std::vector<bool> composite(n, false);
  std::vector<std::uint64_t> out;
  for (std::uint64_t i = 2; i < n; ++i) {
    if (composite[i]) continue;
    out.push_back(i);
    for (std::uint64_t j = i * i; j < n; j += i) composite[j] = true;
  }
  return out;
}

// A small expression tree with std::variant and unique_ptr.
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Add {
  ExprPtr l, r;
};
struct Mul {
  ExprPtr l, r;
};
struct Num {
  long v;
};
struct Expr {
  std::variant<Num, Add, Mul> node;
};

template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;

long eval(const Expr& e) {
  return std::visit(Overload{[](const Num& n) { return n.v; },
                             [](const Add& a) { return eval(*a.l) + eval(*a.r); },
                             [](const Mul& m) { return eval(*m.l) * eval(*m.r); }},
                    e.node);
}

ExprPtr num(long v) {
  return std::make_unique<Expr>(Expr{Num{v}});
}
ExprPtr add(ExprPtr l, ExprPtr r) {
  return std::make_unique<Expr>(Expr{Add{std::move(l), std::move(r)}});
}
ExprPtr mul(ExprPtr l, ExprPtr r) {
  return std::make_unique<Expr>(Expr{Mul{std::move(l), std::move(r)}});
}

// sum_{i=1..n} i*(i+1), built as a tree
ExprPtr series(long n) {
  ExprPtr acc = num(0);
  for (long i = 1; i <= n; ++i) acc = add(std::move(acc), mul(num(i), num(i + 1)));
  return acc;
}

const char* kText =
    "the quick brown fox jumps over the lazy dog the dog barks and the fox runs "
    "a quick brown dog jumps over a lazy fox while the lazy dog sleeps";

}  // namespace

int main() {
  // 1. word frequencies with std::map, ties broken alphabetically
  std::map<std::string, int> freq;
  std::istringstream in(kText);
  for (std::string w; in >> w;) ++freq[w];
  std::vector<std::pair<std::string, int>> byCount(freq.begin(), freq.end());
  std::stable_sort(byCount.begin(), byCount.end(),
                   [](auto& a, auto& b) { return a.second > b.second; });
  std::cout << "words " << freq.size();
  for (std::size_t i = 0; i < 5; ++i)
    std::cout << ' ' << byCount[i].first << '=' << byCount[i].second;
  std::cout << '\n';

  // 2. Fibonacci by matrix power (templates, constexpr)
  std::cout << "fib90 " << fib(90) << '\n';

  // 3. primes
  auto ps = primes_below(100000);
  std::cout << "primes " << ps.size() << ' ' << sum_of(ps) << '\n';

  // 4. variant expression tree
  std::cout << "series " << eval(*series(1000)) << '\n';

  // 5. unordered_map of strings, set of tuples, optional
  std::unordered_map<std::string, std::vector<int>> groups;
  for (int i = 0; i < 5000; ++i) groups["g" + std::to_string(i % 37)].push_back(i);
  std::set<std::tuple<std::size_t, std::string>> sizes;
  for (auto& [k, v] : groups) sizes.emplace(v.size(), k);
  auto first = *sizes.begin();
  auto last = *sizes.rbegin();
  std::optional<int> found;
  for (auto& [k, v] : groups)
    if (k == "g36") found = sum_of(v);
  std::cout << "groups " << groups.size() << ' ' << std::get<1>(first) << ':' << std::get<0>(first)
            << ' ' << std::get<1>(last) << ':' << std::get<0>(last) << ' ' << found.value_or(-1)
            << '\n';
  return 0;
}
