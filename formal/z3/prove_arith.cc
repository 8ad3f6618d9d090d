// z3 proofs of hakmem's address and size arithmetic, on the shipped templates: every
// function proved here is the one production runs (src/common/word.h), instantiated with
// the z3 word policy (z3_word.h). Each claim is checked by asking z3 for a counterexample
// (an input breaking the claim, or reaching undefined behaviour); "proved" means z3 found
// none (unsat). A counterexample is printed with its values and the program exits 1.
//
//   prove_arith [GROUP...]   GROUP: region grid states slabs layout classes alignment
//                            memalign policy (default: all). README.md says what each
//                            proves.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/base.h"
#include "front/memalign_route.h"
#include "region/region.h"
#include "regionmap/region_map.h"
#include "tiny/size_class.h"
#include "z3_word.h"

namespace {

using formal::all_paths;
using formal::Bv;
using formal::ctx;
using formal::Pred;
using formal::trace;
using formal::Z3Word;
namespace arith = hak::arith;

using W = Z3Word;
using Layout = arith::ClassLayout<W>;

// The proofs hold for any Region struct up to this size (the state map follows it), so a
// change of the struct's fields does not need new proofs, only this bound.
constexpr uint32_t kHeaderMax = 16 << 10;
static_assert(sizeof(hak::Region) <= kHeaderMax);

// A value printed with a counterexample.
struct Shown {
  std::string name;
  z3::expr e;
};

z3::expr bv64(const char* name) {
  return ctx().bv_const(name, 64);
}
z3::expr bv32(const char* name) {
  return ctx().bv_const(name, 32);
}
z3::expr k64(uint64_t v) {
  return ctx().bv_val(v, 64);
}
z3::expr k32(uint64_t v) {
  return ctx().bv_val(v, 32);
}

int g_failures = 0;
int g_proved = 0;
double g_seconds = 0;

void print_value(const std::string& name, const z3::expr& v) {
  if (v.is_bool()) {
    std::printf("      %-22s %s\n", name.c_str(), v.is_true() ? "true" : "false");
  } else {
    uint64_t x = v.get_numeral_uint64();
    std::printf("      %-22s 0x%" PRIx64 " (%" PRIu64 ")\n", name.c_str(), x, x);
  }
}

// Proves premise => claim, together with every obligation recorded since the last call
// (the trace is cleared here). Prints PROVED or the counterexample.
bool prove(const std::string& statement, const z3::expr& premise, const z3::expr& claim,
           const std::vector<Shown>& shown, bool quiet = false) {
  std::vector<formal::Obligation> obligations = std::move(trace().obligations);
  trace().obligations.clear();
  z3::expr all = claim;
  for (const formal::Obligation& o : obligations) all = all && o.holds;
  z3::solver s(ctx());
  s.add(premise);
  s.add(!all);
  auto t0 = std::chrono::steady_clock::now();
  z3::check_result r = s.check();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_seconds += secs;
  if (r == z3::unsat) {
    ++g_proved;
    if (!quiet) std::printf("  PROVED  %s  [%.3f s]\n", statement.c_str(), secs);
    return true;
  }
  ++g_failures;
  if (r == z3::unknown) {
    std::printf("  UNKNOWN %s  [%.3f s] (%s)\n", statement.c_str(), secs,
                s.reason_unknown().c_str());
    return false;
  }
  z3::model m = s.get_model();
  std::printf("  FAILED  %s  [%.3f s]\n    counterexample:\n", statement.c_str(), secs);
  for (const Shown& v : shown) print_value(v.name, m.eval(v.e, true));
  if (!m.eval(claim, true).is_true()) std::printf("    the claim is false there\n");
  for (const formal::Obligation& o : obligations)
    if (!m.eval(o.holds, true).is_true())
      std::printf("    undefined behaviour there: %s\n", o.what.c_str());
  return false;
}

// Runs `one` for every class (bs: its grid step, class_stride) and reports one line: all 40
// classes proved, or the failures (printed by prove) and the total time.
void for_every_class(const std::string& statement,
                     const std::function<bool(unsigned c, uint32_t bs)>& one) {
  auto t0 = std::chrono::steady_clock::now();
  int failed = 0;
  for (unsigned c = 0; c < hak::kNumClasses; ++c)
    if (!one(c, hak::kClasses.stride[c])) ++failed;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed)
    std::printf("  FAILED  %s: %d of %u classes  [%.3f s]\n", statement.c_str(), failed,
                hak::kNumClasses, secs);
  else
    std::printf("  PROVED  %s, for each of the %u classes  [%.3f s]\n", statement.c_str(),
                hak::kNumClasses, secs);
}

std::string class_name(unsigned c, uint32_t bs) {
  std::string grid = bs == hak::kClasses.size[c] ? "" : ", grid " + std::to_string(bs) + " B";
  return "class " + std::to_string(c) + " (" + std::to_string(hak::kClasses.size[c]) + " B" + grid +
         ")";
}

// --- specifications: plain definitions, written from model/SPEC.md, not from the code ---

// The block size of class c by the table production reads (every entry, as an ite chain
// without obligations: a specification may look past the end).
z3::expr spec_class_size(const z3::expr& c32) {
  z3::expr r = k64(0);
  for (unsigned c = hak::kNumClasses; c-- > 0;)
    r = z3::ite(c32 == k32(c), k64(hak::kClasses.size[c]), r);
  return r;
}
// The grid step of class c's blocks by SPEC section 2: the class size, 64 bytes more for
// C6 and C7.
z3::expr spec_class_stride(const z3::expr& c32) {
  return spec_class_size(c32) + z3::ite(c32 == k32(6) || c32 == k32(7), k64(64), k64(0));
}
// The smallest power of two >= x, for 1 <= x <= 2^63 (0 outside).
z3::expr spec_pow2_ceil(const z3::expr& x) {
  z3::expr r = k64(0);
  for (unsigned k = 64; k-- > 0;)
    r = z3::ite(z3::ule(x, k64(uint64_t{1} << k)), k64(uint64_t{1} << k), r);
  return r;
}
z3::expr spec_is_pow2(const z3::expr& x) {
  return x != 0 && (x & (x - 1)) == 0;
}
// x is a multiple of the power of two a (a mask: z3 is slow to divide by a variable).
z3::expr aligned_to(const z3::expr& x, const z3::expr& pow2) {
  return (x & (pow2 - 1)) == 0;
}
z3::expr umax(const z3::expr& a, const z3::expr& b) {
  return z3::ite(z3::ult(a, b), b, a);
}
z3::expr umin(const z3::expr& a, const z3::expr& b) {
  return z3::ite(z3::ult(a, b), a, b);
}

Layout layout_of(uint32_t bs, const z3::expr& header_bytes) {
  return all_paths([&] { return arith::class_layout<W>(Bv<32>(k32(bs)), Bv<32>(header_bytes)); });
}
z3::expr header_in_range(const z3::expr& h) {
  return z3::ule(h, k32(kHeaderMax));
}
z3::expr z64(const Bv<32>& x) {
  return z3::zext(x.e, 32);
}

// ---------------------------------------------------------------------------------------
void prove_region() {
  std::printf("region: region map index, region base, slab index (every 64-bit address)\n");
  z3::expr a = bv64("addr");
  Bv<64> addr(a);
  const z3::expr yes = ctx().bool_val(true);

  Bv<64> idx = arith::region_map_index<W>(addr);
  Pred outside = arith::region_map_index_outside<W>(idx);
  prove("region_kind_of rejects addr iff addr >= 2^47", yes,
        outside.e == z3::uge(a, k64(uint64_t{1} << hak::kAddressBits)),
        {{"addr", a}, {"index", idx.e}, {"rejected", outside.e}});
  outside = arith::region_map_index_outside<W>(idx);
  prove("an accepted addr's index is inside g_region_map (< 2^26 entries)", !outside.e,
        z3::ult(idx.e, k64(hak::kRegionMapEntries)), {{"addr", a}, {"index", idx.e}});

  Bv<64> base = arith::region_base<W>(addr);
  prove("region_base(addr) is 2 MiB-aligned and base <= addr < base + 2 MiB", yes,
        (base.e & k64(hak::kRegionMask)) == 0 && z3::ule(base.e, a) &&
            z3::ult(a - base.e, k64(hak::kRegionSize)),
        {{"addr", a}, {"base", base.e}});

  base = arith::region_base<W>(addr);
  Bv<64> off = addr - base;
  Bv<32> slab = arith::slab_index<W>(off);
  prove("slab_index(addr - base) < 32, and the slab holds the offset", yes,
        z3::ult(slab.e, k32(hak::kSlabsPerRegion)) &&
            z3::ule(z64(slab) * k64(hak::kSlabSize), off.e) &&
            z3::ult(off.e, (z64(slab) + 1) * k64(hak::kSlabSize)),
        {{"addr", a}, {"offset", off.e}, {"slab", slab.e}});
}

// ---------------------------------------------------------------------------------------
void prove_grid() {
  std::printf("grid: the free path's boundary checks (every offset of a region)\n");
  z3::expr o = bv64("off"), h = bv32("header_bytes");
  Bv<64> off(o);
  z3::expr in_region = z3::ult(o, k64(hak::kRegionSize));
  for_every_class(
      "on_grid(off) == (off % block_size == 0), 0 <= off < 2 MiB", [&](unsigned c, uint32_t bs) {
        Layout l = layout_of(bs, h);
        Pred g = all_paths([&] { return arith::on_grid<W>(l, off); });
        return prove(class_name(c, bs), in_region && header_in_range(h),
                     g.e == (z3::urem(o, k64(bs)) == 0),
                     {{"off", o},
                      {"header_bytes", h},
                      {"on_grid", g.e},
                      {"block_index", all_paths([&] { return arith::block_index<W>(l, off); }).e},
                      {"inv", l.inv.e}},
                     true);
      });
  for_every_class(
      "is_block_start(off) == (data_begin <= off < data_end && off % block_size == 0), "
      "header <= 16 KiB",
      [&](unsigned c, uint32_t bs) {
        Layout l = layout_of(bs, h);
        Pred b = all_paths([&] { return arith::is_block_start<W>(l, off); });
        z3::expr def = z3::ule(z64(l.data_begin), o) && z3::ult(o, z64(l.data_end)) &&
                       z3::urem(o, k64(bs)) == 0;
        return prove(class_name(c, bs), in_region && header_in_range(h), b.e == def,
                     {{"off", o},
                      {"header_bytes", h},
                      {"is_block_start", b.e},
                      {"data_begin", l.data_begin.e},
                      {"data_end", l.data_end.e}},
                     true);
      });
}

// ---------------------------------------------------------------------------------------
void prove_states() {
  std::printf("states: the state map entry of a grid position\n");
  z3::expr o1 = bv64("off1"), o2 = bv64("off2"), h = bv32("header_bytes");
  Bv<64> off1(o1), off2(o2);
  z3::expr in_region = z3::ult(o1, k64(hak::kRegionSize)) && z3::ult(o2, k64(hak::kRegionSize));
  for_every_class(
      "the block index of a grid position (on_grid, < 2 MiB) is off / block_size, and its "
      "entry lies inside the state_bytes the layout reserves",
      [&](unsigned c, uint32_t bs) {
        Layout l = layout_of(bs, h);
        Pred g = all_paths([&] { return arith::on_grid<W>(l, off1); });
        Bv<64> k = all_paths([&] { return arith::block_index<W>(l, off1); });
        return prove(class_name(c, bs),
                     z3::ult(o1, k64(hak::kRegionSize)) && header_in_range(h) && g.e,
                     k.e == z3::udiv(o1, k64(bs)) &&
                         z3::ule((k.e + 1) * k64(hak::kStateEntryBytes), z64(l.state_bytes)),
                     {{"off", o1}, {"block_index", k.e}, {"state_bytes", l.state_bytes.e}}, true);
      });
  for_every_class("distinct grid positions (on_grid, < 2 MiB) have distinct state entries",
                  [&](unsigned c, uint32_t bs) {
                    Layout l = layout_of(bs, h);
                    Pred g1 = all_paths([&] { return arith::on_grid<W>(l, off1); });
                    Pred g2 = all_paths([&] { return arith::on_grid<W>(l, off2); });
                    Bv<64> k1 = all_paths([&] { return arith::block_index<W>(l, off1); });
                    Bv<64> k2 = all_paths([&] { return arith::block_index<W>(l, off2); });
                    return prove(
                        class_name(c, bs),
                        in_region && header_in_range(h) && g1.e && g2.e && o1 != o2, k1.e != k2.e,
                        {{"off1", o1}, {"off2", o2}, {"index1", k1.e}, {"index2", k2.e}}, true);
                  });
}

// ---------------------------------------------------------------------------------------
void prove_slabs() {
  std::printf("slabs: region_reset's block ranges against region_put's slab index\n");
  z3::expr h = bv32("header_bytes"), i = bv32("slab"), k = bv32("block");
  for_every_class(
      "block k is in slab i's [first, end) iff it is a block of the region (data_begin <= "
      "k * block_size < data_end) starting in slab i (slab_index(k * block_size) == i), "
      "every slab, every k < 2^21",
      [&](unsigned c, uint32_t bs) {
        Layout l = layout_of(bs, h);
        arith::BlockRange<W> blocks = arith::region_blocks<W>(l);
        arith::BlockRange<W> r =
            all_paths([&] { return arith::slab_blocks<W>(Bv<32>(k32(bs)), blocks, Bv<32>(i)); });
        Bv<64> off = Bv<64>(z3::zext(k, 32) * k64(bs));
        Bv<32> slab = arith::slab_index<W>(off);
        z3::expr in_slab = z3::ule(r.first.e, k) && z3::ult(k, r.end.e);
        z3::expr block_of_slab =
            z3::ule(z64(l.data_begin), off.e) && z3::ult(off.e, z64(l.data_end)) && slab.e == i;
        return prove(class_name(c, bs),
                     header_in_range(h) && z3::ult(i, k32(hak::kSlabsPerRegion)) &&
                         z3::ult(k, k32(uint64_t{1} << 21)),
                     in_slab == block_of_slab && z3::ule(r.first.e, r.end.e) &&
                         z3::ule(r.end.e, blocks.end.e) &&
                         blocks.first.e * k32(bs) == l.data_begin.e &&
                         blocks.end.e * k32(bs) == l.data_end.e,
                     {{"header_bytes", h},
                      {"slab", i},
                      {"block", k},
                      {"first", r.first.e},
                      {"end", r.end.e},
                      {"slab_index(k * bs)", slab.e},
                      {"data_begin", l.data_begin.e},
                      {"data_end", l.data_end.e}},
                     true);
      });
}

// ---------------------------------------------------------------------------------------
void prove_layout() {
  std::printf("layout: init_layout's numbers (every class, any header of <= 16 KiB)\n");
  z3::expr h = bv32("header_bytes");
  for_every_class(
      "blocks start past the header and the state map at the first grid position, end by "
      "2 MiB, at least one block",
      [&](unsigned c, uint32_t bs) {
        Layout l = layout_of(bs, h);
        z3::expr header_end = z3::zext(h, 32) + z64(l.state_bytes);
        z3::expr db = z64(l.data_begin), de = z64(l.data_end), b = k64(bs);
        z3::expr claim = z3::urem(db, b) == 0 && z3::ule(header_end, db) &&
                         z3::ult(db - header_end, b) && z3::urem(de, b) == 0 &&
                         z3::ule(de, k64(hak::kRegionSize)) &&
                         z3::ugt(de + b, k64(hak::kRegionSize)) && z3::ult(db, de);
        return prove(class_name(c, bs), header_in_range(h), claim,
                     {{"header_bytes", h},
                      {"state_bytes", l.state_bytes.e},
                      {"data_begin", l.data_begin.e},
                      {"data_end", l.data_end.e}},
                     true);
      });
  for_every_class("inv = ceil(2^40 / block_size); the state map in whole cache lines",
                  [&](unsigned c, uint32_t bs) {
                    Layout l = layout_of(bs, h);
                    z3::expr b = k64(bs), inv = l.inv.e;
                    z3::expr two40 = k64(uint64_t{1} << 40);
                    z3::expr claim = z3::uge(inv * b, two40) && z3::ult((inv - 1) * b, two40) &&
                                     z3::urem(z64(l.state_bytes), k64(64)) == 0;
                    return prove(class_name(c, bs), header_in_range(h), claim,
                                 {{"inv", l.inv.e}, {"state_bytes", l.state_bytes.e}}, true);
                  });
}

// ---------------------------------------------------------------------------------------
void prove_classes() {
  std::printf("classes: size_to_class and the class table (every size 0..256 KiB)\n");
  z3::expr n = bv64("n");
  Bv<64> size(n);
  z3::expr in_domain = z3::ule(n, k64(hak::kMidMax));
  Bv<32> c = all_paths([&] { return arith::size_to_class<W>(size); });
  z3::expr cs = spec_class_size(c.e);
  prove(
      "size_to_class(n) is the smallest class that fits max(n, 1): c < 40, "
      "class_size(c) >= n, c == 0 or class_size(c - 1) < n",
      in_domain,
      z3::ult(c.e, k32(hak::kNumClasses)) && z3::uge(cs, n) &&
          (c.e == 0 || z3::ult(spec_class_size(c.e - 1), n)),
      {{"n", n},
       {"class", c.e},
       {"class_size", cs},
       {"class_size(c-1)", spec_class_size(c.e - 1)}});

  c = all_paths([&] { return arith::size_to_class<W>(size); });
  cs = spec_class_size(c.e);
  prove("waste: 4 * class_size(size_to_class(n)) <= 5 * n for 1024 < n <= 256 KiB",
        in_domain && z3::ugt(n, k64(hak::kTinyMax)), z3::ule(4 * cs, 5 * n),
        {{"n", n}, {"class", c.e}, {"class_size", cs}});

  // The tiny path against the power-of-two definition, independent of the table.
  c = all_paths([&] { return arith::size_to_class<W>(size); });
  z3::expr smallest_tiny = k32(hak::kTinyClasses);
  for (unsigned k = hak::kTinyClasses; k-- > 0;)
    smallest_tiny = z3::ite(z3::ule(n, k64(uint64_t{8} << k)), k32(k), smallest_tiny);
  prove("the tiny table path: size_to_class(n) = min { c : 8 << c >= max(n, 1) } for n <= 1024",
        z3::ule(n, k64(hak::kTinyMax)), c.e == smallest_tiny,
        {{"n", n}, {"class", c.e}, {"expected", smallest_tiny}});

  // The table production reads is class_size_calc (the template), and the class grid.
  z3::expr cc = bv32("c");
  Bv<64> calc = all_paths([&] { return arith::class_size_calc<W>(Bv<32>(cc)); });
  z3::expr mid = cc - k32(hak::kTinyClasses);
  z3::expr e = k32(11) + z3::udiv(mid, k32(4));
  prove(
      "kClasses.size[c] == class_size_calc(c); tiny c: 8 << c; mid c: 2^(e-1) + "
      "(m % 4 + 1) 2^(e-3) with m = c - 8, e = 11 + m / 4: a multiple of 256",
      z3::ult(cc, k32(hak::kNumClasses)),
      calc.e == spec_class_size(cc) &&
          z3::ite(z3::ult(cc, k32(hak::kTinyClasses)), calc.e == z3::shl(k64(8), z3::zext(cc, 32)),
                  calc.e == z3::shl(k64(1), z3::zext(e - 1, 32)) +
                                z3::zext(z3::urem(mid, k32(4)) + 1, 32) *
                                    z3::shl(k64(1), z3::zext(e - 3, 32)) &&
                      z3::urem(calc.e, k64(256)) == 0),
      {{"c", cc}, {"class_size_calc", calc.e}, {"table", spec_class_size(cc)}});
  z3::expr table_stride = k64(0);
  for (unsigned k = hak::kNumClasses; k-- > 0;)
    table_stride = z3::ite(cc == k32(k), k64(hak::kClasses.stride[k]), table_stride);
  prove(
      "kClasses.stride[c] (the grid step) == class_size(c) + 64 for C6 and C7, else "
      "class_size(c)",
      z3::ult(cc, k32(hak::kNumClasses)), table_stride == spec_class_stride(cc),
      {{"c", cc}, {"stride", table_stride}, {"spec", spec_class_stride(cc)}});
  prove("class sizes increase strictly and the last is 256 KiB",
        z3::ult(cc + 1, k32(hak::kNumClasses)),
        z3::ult(spec_class_size(cc), spec_class_size(cc + 1)) &&
            spec_class_size(k32(hak::kNumClasses - 1)) == k64(hak::kMidMax),
        {{"c", cc}});
}

// ---------------------------------------------------------------------------------------
// A block of class c at address p: p in a region whose layout is class c's, at a block start.
struct BlockAt {
  z3::expr p, h;
  Layout l;
  z3::expr is_block;
};
BlockAt block_of_class(uint32_t bs, const char* pname) {
  z3::expr p = bv64(pname), h = bv32("header_bytes");
  Bv<64> addr(p);
  Bv<64> base = arith::region_base<W>(addr);
  Layout l = layout_of(bs, h);
  Pred start = all_paths([&] { return arith::is_block_start<W>(l, addr - base); });
  return {p, h, l, start.e && header_in_range(h)};
}

void prove_alignment() {
  std::printf("alignment: model/SPEC.md section 2, every block of malloc(n), n <= 256 KiB\n");
  z3::expr n = bv64("n");
  Bv<64> size(n);
  for_every_class(
      "a block p of size_to_class(n) is aligned to min(16, the power of two >= max(n, 1))",
      [&](unsigned c, uint32_t bs) {
        Bv<32> cls = all_paths([&] { return arith::size_to_class<W>(size); });
        BlockAt b = block_of_class(bs, "p");
        z3::expr align = umin(k64(16), spec_pow2_ceil(umax(n, k64(1))));
        return prove(
            class_name(c, bs), z3::ule(n, k64(hak::kMidMax)) && cls.e == k32(c) && b.is_block,
            aligned_to(b.p, align),
            {{"n", n}, {"p", b.p}, {"header_bytes", b.h}, {"required alignment", align}}, true);
      });
}

// ---------------------------------------------------------------------------------------
// model/SPEC.md section 2's memalign route, with glibc's rounding and its ENOMEM bound.
struct SpecRoute {
  z3::expr kind, size, align;
};
SpecRoute spec_memalign(const z3::expr& align, const z3::expr& size) {
  using namespace hak::arith;
  z3::expr a = z3::ite(spec_is_pow2(align), align, spec_pow2_ceil(align));
  z3::expr s0 = umax(size, a);
  // s <= 256, or s <= 1024 and a <= 64: a tiny block; else a size <= 1024 counts as 1025.
  z3::expr tiny = z3::ule(s0, k64(256)) || (z3::ule(s0, k64(1024)) && z3::ule(a, k64(64)));
  z3::expr s = z3::ite(z3::ule(s0, k64(1024)) && !tiny, k64(1025), s0);
  z3::expr p2 = spec_pow2_ceil(s);
  z3::expr small = tiny || (z3::ule(s, k64(hak::kMidMax)) && z3::ule(a, k64(256)));
  z3::expr kind = z3::ite(
      z3::ule(align, k64(16)), k32(kRouteMalloc),
      z3::ite(z3::ugt(align, k64(uint64_t{1} << 63)), k32(kRouteEinval),
              z3::ite(z3::ugt(size, k64(hak::kMaxRequest) - a), k32(kRouteEnomem),
                      z3::ite(small ||
                                  (z3::ule(s, k64(hak::kMidMax)) && z3::ule(p2, k64(hak::kMidMax))),
                              k32(kRouteMalloc), k32(kRouteLarge)))));
  z3::expr msize = z3::ite(z3::ule(align, k64(16)), umax(size, align), z3::ite(small, s, p2));
  return {kind, z3::ite(kind == k32(kRouteLarge), size, msize), a};
}

void prove_memalign() {
  std::printf("memalign: routes of memalign(align, size), every 64-bit align and size\n");
  using namespace hak::arith;
  z3::expr a = bv64("align"), n = bv64("size");
  const z3::expr yes = ctx().bool_val(true);
  auto t0 = std::chrono::steady_clock::now();
  MemalignRoute<W> r = all_paths([&] { return memalign_route<W>(Bv<64>(a), Bv<64>(n)); });
  std::printf("  (the route's terms, every path: %.3f s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  SpecRoute spec = spec_memalign(a, n);
  z3::expr carries_size = r.kind.e == k32(kRouteMalloc) || r.kind.e == k32(kRouteLarge);
  prove("memalign_route == SPEC section 2 (kind; size of malloc and large; align of large)", yes,
        r.kind.e == spec.kind && z3::implies(carries_size, r.size.e == spec.size) &&
            z3::implies(r.kind.e == k32(kRouteLarge), r.align.e == spec.align),
        {{"align", a},
         {"size", n},
         {"route", r.kind.e},
         {"route size", r.size.e},
         {"route align", r.align.e},
         {"spec route", spec.kind},
         {"spec size", spec.size},
         {"spec align", spec.align}});

  // With the claim above, for the production route: proved on the specification's route
  // (compact terms; z3 takes minutes on the route's join of 400 paths, 40 times).
  for_every_class(
      "a small route's block is aligned to align (glibc-rounded; power-of-two align <= 16 "
      "as is) and holds size bytes",
      [&](unsigned c, uint32_t bs) {
        Bv<32> cls = all_paths([&] { return arith::size_to_class<W>(Bv<64>(spec.size)); });
        BlockAt b = block_of_class(bs, "p");
        z3::expr required =
            z3::ite(spec_is_pow2(a), a, z3::ite(z3::ugt(a, k64(16)), spec_pow2_ceil(a), k64(1)));
        return prove(class_name(c, bs),
                     spec.kind == k32(kRouteMalloc) && z3::ule(spec.size, k64(hak::kMidMax)) &&
                         cls.e == k32(c) && b.is_block,
                     aligned_to(b.p, required) && z3::uge(k64(hak::kClasses.size[c]), n),
                     {{"align", a},
                      {"size", n},
                      {"malloc request", spec.size},
                      {"p", b.p},
                      {"header_bytes", b.h},
                      {"required alignment", required}},
                     true);
      });
}

// ---------------------------------------------------------------------------------------
// The z3 policy is trusted to mean what C++ means: check it against the compiler on
// concrete inputs (each template run natively and symbolically on constants).
uint64_t value_of(const z3::expr& e) {
  z3::expr v = e.simplify();
  if (v.is_bool()) return v.is_true() ? 1 : 0;
  return v.get_numeral_uint64();
}

void prove_policy() {
  std::printf("policy: the z3 word policy computes what the compiled templates compute\n");
  using hak::NativeWord;
  std::mt19937_64 rng(14);
  int mismatches = 0, checks = 0;
  auto expect = [&](const char* what, uint64_t native, const z3::expr& symbolic, uint64_t in1,
                    uint64_t in2) {
    ++checks;
    trace().obligations.clear();
    uint64_t z = value_of(symbolic);
    if (z != native) {
      if (++mismatches <= 10)
        std::printf("    MISMATCH %s(0x%" PRIx64 ", 0x%" PRIx64 "): native 0x%" PRIx64
                    ", z3 0x%" PRIx64 "\n",
                    what, in1, in2, native, z);
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint64_t> addrs = {0,
                                 1,
                                 hak::kRegionSize - 1,
                                 hak::kRegionSize,
                                 (uint64_t{1} << 47) - 1,
                                 uint64_t{1} << 47,
                                 ~uint64_t{0}};
  for (int i = 0; i < 200; ++i) addrs.push_back(rng() >> (rng() % 64));
  for (uint64_t x : addrs) {
    Bv<64> s(k64(x));
    expect("region_map_index", arith::region_map_index<NativeWord>(x),
           arith::region_map_index<W>(s).e, x, 0);
    expect("region_map_index_outside",
           arith::region_map_index_outside<NativeWord>(arith::region_map_index<NativeWord>(x)),
           arith::region_map_index_outside<W>(arith::region_map_index<W>(s)).e, x, 0);
    expect("region_base", arith::region_base<NativeWord>(x), arith::region_base<W>(s).e, x, 0);
    uint64_t off = x & hak::kRegionMask;
    expect("slab_index", arith::slab_index<NativeWord>(off),
           arith::slab_index<W>(Bv<64>(k64(off))).e, off, 0);
  }
  for (unsigned c = 0; c < hak::kNumClasses; ++c) {
    uint32_t bs = hak::kClasses.stride[c];
    expect("class_size_calc", arith::class_size_calc<NativeWord>(c),
           arith::class_size_calc<W>(Bv<32>(k32(c))).e, c, 0);
    for (uint32_t h : {0u, 1u, static_cast<uint32_t>(sizeof(hak::Region)), kHeaderMax}) {
      arith::ClassLayout<NativeWord> n = arith::class_layout<NativeWord>(bs, h);
      Layout z = layout_of(bs, k32(h));
      expect("layout.inv", n.inv, z.inv.e, bs, h);
      expect("layout.state_bytes", n.state_bytes, z.state_bytes.e, bs, h);
      expect("layout.data_begin", n.data_begin, z.data_begin.e, bs, h);
      expect("layout.data_end", n.data_end, z.data_end.e, bs, h);
      arith::BlockRange<NativeWord> nb = arith::region_blocks<NativeWord>(n);
      arith::BlockRange<W> zb = arith::region_blocks<W>(z);
      for (uint32_t i = 0; i < hak::kSlabsPerRegion; ++i) {
        arith::BlockRange<NativeWord> nr = arith::slab_blocks<NativeWord>(bs, nb, i);
        arith::BlockRange<W> zr = arith::slab_blocks<W>(Bv<32>(k32(bs)), zb, Bv<32>(k32(i)));
        expect("slab_blocks.first", nr.first, zr.first.e, bs, i);
        expect("slab_blocks.end", nr.end, zr.end.e, bs, i);
      }
      for (int i = 0; i < 40; ++i) {
        uint64_t off = i < 20 ? (rng() % (hak::kRegionSize / bs)) * bs : rng() % hak::kRegionSize;
        Bv<64> so(k64(off));
        expect("on_grid", arith::on_grid<NativeWord>(n, off), arith::on_grid<W>(z, so).e, off, bs);
        expect("is_block_start", arith::is_block_start<NativeWord>(n, off),
               arith::is_block_start<W>(z, so).e, off, bs);
        expect("block_index", arith::block_index<NativeWord>(n, off),
               arith::block_index<W>(z, so).e, off, bs);
      }
    }
  }
  for (uint64_t n = 0; n <= hak::kMidMax; n += (n < 1100 ? 1 : 1 + rng() % 199))
    expect("size_to_class", arith::size_to_class<NativeWord>(n),
           arith::size_to_class<W>(Bv<64>(k64(n))).e, n, 0);
  std::vector<uint64_t> aligns = {0,
                                  1,
                                  2,
                                  3,
                                  8,
                                  16,
                                  17,
                                  24,
                                  31,
                                  32,
                                  33,
                                  64,
                                  256,
                                  257,
                                  512,
                                  4096,
                                  1 << 17,
                                  1 << 18,
                                  (1 << 18) + 1,
                                  uint64_t{1} << 62,
                                  (uint64_t{1} << 63) - 1,
                                  uint64_t{1} << 63,
                                  (uint64_t{1} << 63) + 1,
                                  ~uint64_t{0}};
  std::vector<uint64_t> sizes = {0,
                                 1,
                                 15,
                                 16,
                                 17,
                                 1024,
                                 1025,
                                 1280,
                                 2048,
                                 65536,
                                 262143,
                                 262144,
                                 262145,
                                 hak::kMaxRequest - 512,
                                 hak::kMaxRequest,
                                 ~uint64_t{0}};
  for (int i = 0; i < 30; ++i) sizes.push_back(rng() >> (rng() % 64));
  for (uint64_t a : aligns)
    for (uint64_t s : sizes) {
      arith::MemalignRoute<NativeWord> n = arith::memalign_route<NativeWord>(a, s);
      arith::MemalignRoute<W> z = arith::memalign_route<W>(Bv<64>(k64(a)), Bv<64>(k64(s)));
      expect("memalign_route.kind", n.kind, z.kind.e, a, s);
      if (n.kind == arith::kRouteMalloc || n.kind == arith::kRouteLarge)
        expect("memalign_route.size", n.size, z.size.e, a, s);
      if (n.kind == arith::kRouteLarge) expect("memalign_route.align", n.align, z.align.e, a, s);
    }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_seconds += secs;
  if (mismatches) {
    ++g_failures;
    std::printf("  FAILED  the z3 policy disagrees with the compiler in %d of %d cases  [%.3f s]\n",
                mismatches, checks, secs);
  } else {
    ++g_proved;
    std::printf("  CHECKED the z3 policy agrees with the compiler on %d concrete cases  [%.3f s]\n",
                checks, secs);
  }
}

struct Group {
  const char* name;
  void (*run)();
};
constexpr Group kGroups[] = {
    {"region", prove_region},       {"grid", prove_grid},         {"states", prove_states},
    {"slabs", prove_slabs},         {"layout", prove_layout},     {"classes", prove_classes},
    {"alignment", prove_alignment}, {"memalign", prove_memalign}, {"policy", prove_policy},
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<const Group*> run;
  for (int i = 1; i < argc; ++i) {
    const Group* found = nullptr;
    for (const Group& g : kGroups)
      if (std::strcmp(g.name, argv[i]) == 0) found = &g;
    if (!found) {
      std::fprintf(stderr, "prove_arith: unknown group %s\n", argv[i]);
      return 2;
    }
    run.push_back(found);
  }
  if (run.empty())
    for (const Group& g : kGroups) run.push_back(&g);
  auto t0 = std::chrono::steady_clock::now();
  for (const Group* g : run) g->run();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d proved, %d failed; solver %.2f s, wall %.2f s; %" PRIu64
              " paths explored, %" PRIu64 " feasibility checks (z3 %s)\n",
              g_proved, g_failures, g_seconds, wall, formal::explorer().paths,
              formal::explorer().feasibility_checks, Z3_get_full_version());
  std::fflush(stdout);
  // Skips the destruction of the z3 context and its terms (seconds, for nothing).
  std::_Exit(g_failures ? 1 : 0);
}
