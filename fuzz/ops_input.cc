#include "ops_input.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "model.h"

namespace hakfuzz {

using hakmodel::Op;
using hakmodel::OpCode;
using hakmodel::Trace;

namespace {

constexpr uint64_t kSlab = 64 << 10;
constexpr uint64_t kRegion = 2 << 20;
constexpr uint64_t kMidMax = 256 << 10;

// Overflowing calloc operands (n * size does not fit in 64 bits).
constexpr uint64_t kMax = ~uint64_t{0};
constexpr std::array<std::pair<uint64_t, uint64_t>, 16> kCallocOverflow{{
    {kMax, 2},
    {2, kMax},
    {uint64_t{1} << 32, uint64_t{1} << 32},
    {kMax / 2 + 1, 2},
    {uint64_t{1} << 33, uint64_t{1} << 31},
    {3, kMax / 3 + 1},
    {kMax / 16 + 1, 16},
    {kMax, kMax},
    {uint64_t{1} << 63, uint64_t{1} << 63},
    {65537, kMax / 65536},
    {kMax / 1024 + 1, 1024},
    {1024, kMax / 1024 + 1},
    {(uint64_t{1} << 32) + 1, uint64_t{1} << 32},
    {kMax / 7 + 1, 7},
    {kMax / 2, 3},
    {uint64_t{1} << 40, uint64_t{1} << 24},
}};

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return pos_ >= n_; }
  uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
  uint16_t u16() {
    uint16_t lo = u8();
    return static_cast<uint16_t>(lo | (u8() << 8));
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

uint64_t block_size(uint64_t n) {
  if (n > kMidMax) return n;
  return hakmodel::class_size(hakmodel::size_to_class(n ? n : 1));
}

uint64_t count_of(uint8_t k, uint64_t bs, Reader* r) {
  uint64_t d = k & 31;
  uint64_t slab = std::max<uint64_t>(1, kSlab / bs), region = std::max<uint64_t>(1, kRegion / bs);
  auto around = [d](uint64_t base) { return base + d >= 16 ? base + d - 16 : 0; };
  switch (k >> 5) {
    case 0:
      return d;
    case 1:
      return 8 * d;
    case 2:
      return around(slab);
    case 3:
      return around(2 * slab);
    case 4:
      return around(region);
    case 5:
      return around(2 * region);
    case 6:
      return 64 * d;
    default:
      return r ? r->u16() : 0;
  }
}

uint64_t size_of(Reader& r) {
  uint8_t k = r.u8();
  if (k < 128) {
    const auto& t = edge_sizes();
    return t[k % t.size()];
  }
  if (k < 192) return (uint64_t{k & 63u} << 8) | r.u8();
  if (k < 248) return (uint64_t{k - 192u} << 16) | r.u16();
  return ((uint64_t{k - 248u} << 16) | r.u16()) << 3;
}

// What one block of `bs` bytes (block_size) takes of the address space: its block, or a
// large block's run (its header page and the block, rounded up to 2 MiB regions). Each
// run is mapped, unpoisoned and poisoned again (ASan's shadow) and faulted in at both ends
// whatever the block's size: a bulk op of 1023 large blocks of 256 KiB + 1 mapped 2 GiB
// when it counted as 256 MiB (a third of the corpus's time went to such inputs).
uint64_t footprint(uint64_t bs) {
  if (bs <= kMidMax) return bs;
  return (bs + 4096 + kRegion - 1) / kRegion * kRegion;
}

// Budget of the bulk ops of one input.
struct Budget {
  uint64_t blocks, bytes = kBulkBytes;
  uint64_t cut(uint64_t count, uint64_t bs) {
    uint64_t each = footprint(bs);
    count = std::min({count, blocks, bytes / each});
    blocks -= count;
    bytes -= count * each;
    return count;
  }
};

void put16(std::vector<uint8_t>* o, uint64_t v) {
  o->push_back(static_cast<uint8_t>(v & 255));
  o->push_back(static_cast<uint8_t>(v >> 8));
}

bool put_size(std::vector<uint8_t>* o, uint64_t n) {
  const auto& t = edge_sizes();
  if (auto it = std::find(t.begin(), t.end(), n); it != t.end()) {
    o->push_back(static_cast<uint8_t>(it - t.begin()));
    return true;
  }
  if (n < (64u << 8)) {
    o->push_back(static_cast<uint8_t>(128 + (n >> 8)));
    o->push_back(static_cast<uint8_t>(n & 255));
    return true;
  }
  if (n < (uint64_t{56} << 16)) {
    o->push_back(static_cast<uint8_t>(192 + (n >> 16)));
    put16(o, n & 0xffff);
    return true;
  }
  if (n % 8 == 0 && (n >> 3) < (uint64_t{8} << 16)) {
    o->push_back(static_cast<uint8_t>(248 + (n >> 19)));
    put16(o, (n >> 3) & 0xffff);
    return true;
  }
  return false;
}

bool put_count(std::vector<uint8_t>* o, uint64_t count, uint64_t bs) {
  for (int k = 0; k < 224; ++k)
    if (count_of(static_cast<uint8_t>(k), bs, nullptr) == count) {
      o->push_back(static_cast<uint8_t>(k));
      return true;
    }
  if (count > 0xffff) return false;
  o->push_back(224);
  put16(o, count);
  return true;
}

}  // namespace

const std::vector<uint64_t>& edge_sizes() {
  static const std::vector<uint64_t> table = [] {
    std::vector<uint64_t> v{0};
    for (int c = 0; c < hakmodel::kNumClasses; ++c) {
      uint64_t s = hakmodel::class_size(c);
      v.insert(v.end(), {s - 1, s, s + 1});
    }
    // Large: a run is its header page plus the block, rounded up to 2 MiB regions; runs
    // up to 32 MiB go to the cache of kept runs.
    for (uint64_t r : {kRegion, 2 * kRegion, 16 * kRegion}) v.insert(v.end(), {r - 4096, r - 4095});
    v.push_back(1 << 20);
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    if (v.size() != 128) {
      fprintf(stderr, "ops_input: the edge table has %zu sizes, the format needs 128\n", v.size());
      abort();
    }
    return v;
  }();
  return table;
}

OpTable make_table(const OpWeights& w) {
  const std::pair<OpCode, int> parts[] = {
      {OpCode::kMalloc, w.malloc},   {OpCode::kFree, w.free},
      {OpCode::kRealloc, w.realloc}, {OpCode::kMemalign, w.memalign},
      {OpCode::kCalloc, w.calloc},   {OpCode::kMallocN, w.malloc_n},
      {OpCode::kFreeN, w.free_n},    {OpCode::kCollect, w.collect},
      {OpCode::kExit, w.exit},       {OpCode::kBadFree, w.bad_free}};
  OpTable t{};
  t.bulk_blocks = w.bulk_blocks;
  size_t i = 0;
  for (auto [code, n] : parts)
    for (int k = 0; k < n; ++k) {
      if (i == t.ops.size()) break;
      t.ops[i++] = code;
    }
  if (i != t.ops.size()) {
    fprintf(stderr, "ops_input: op weights must add up to 64\n");
    abort();
  }
  for (auto [n, s] : kCallocOverflow) {
    uint64_t product;
    if (!__builtin_mul_overflow(n, s, &product)) {
      fprintf(stderr, "ops_input: calloc pair (%llu, %llu) does not overflow\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(s));
      abort();
    }
  }
  edge_sizes();
  return t;
}

Trace decode(const uint8_t* data, size_t size, const OpTable& table) {
  Reader r(data, size);
  Trace tr;
  uint8_t c = r.u8();
  tr.cfg.warm = (c & 3u) % 3;
  tr.cfg.ultra = !(c & 4);
  tr.cfg.purge = (c & 8) ? 10 : 0;  // purge delay of 10 ms; the fuzzers' clock stands still
  Budget budget{table.bulk_blocks};
  uint64_t last_bs = 1024;  // free_n's slab / region counts: the last malloc_n's blocks
  while (!r.empty() && tr.ops.size() < kMaxOps) {
    uint8_t h = r.u8();
    Op op;
    op.t = h >> 6;
    op.code = table.ops[h & 63];
    switch (op.code) {
      case OpCode::kMalloc:
        op.a = size_of(r);
        break;
      case OpCode::kFree:
        op.a = r.u8();
        break;
      case OpCode::kRealloc:
        op.a = r.u8();
        op.b = size_of(r);
        break;
      case OpCode::kMemalign:
        op.a = r.u8() % 22;
        op.b = size_of(r);
        break;
      case OpCode::kCalloc: {
        uint8_t k = r.u8();
        uint64_t n = size_of(r);
        if (k >= 240) {
          std::tie(op.a, op.b) = kCallocOverflow[k - 240];
        } else {
          op.a = k % 65;
          op.b = op.a && n > kCallocMax / op.a ? kCallocMax / op.a : n;
        }
        break;
      }
      case OpCode::kMallocN: {
        op.a = size_of(r);
        last_bs = block_size(op.a);
        op.b = budget.cut(count_of(r.u8(), last_bs, &r), last_bs);
        break;
      }
      case OpCode::kFreeN:
        op.a = r.u8();
        op.b = count_of(r.u8(), last_bs, &r);
        break;
      case OpCode::kCollect:
      case OpCode::kExit:
      case OpCode::kTick:  // not in the fuzzers' tables
        break;
      case OpCode::kBadFree:
        op.a = r.u8() % hakmodel::kBadKinds;
        op.b = r.u8();
        break;
    }
    tr.ops.push_back(op);
  }
  return tr;
}

bool encode(const Trace& tr, const OpTable& table, std::vector<uint8_t>* out, std::string* err) {
  std::vector<uint8_t> o;
  if (tr.cfg.warm > 2) {
    *err = "warm must be 0, 1 or 2";
    return false;
  }
  if (tr.cfg.purge != 0 && tr.cfg.purge != 10) {
    *err = "purge must be 0 or 10";
    return false;
  }
  o.push_back(static_cast<uint8_t>(tr.cfg.warm | (tr.cfg.ultra ? 0 : 4) | (tr.cfg.purge ? 8 : 0)));
  if (tr.ops.size() > kMaxOps) {
    *err = "more than " + std::to_string(kMaxOps) + " ops";
    return false;
  }
  Budget budget{table.bulk_blocks};
  uint64_t last_bs = 1024;
  for (const Op& op : tr.ops) {
    auto fail = [&](const std::string& why) {
      *err = hakmodel::to_text(op) + ": " + why;
      return false;
    };
    auto slot = std::find(table.ops.begin(), table.ops.end(), op.code);
    if (slot == table.ops.end()) return fail("this target's table has no such op");
    o.push_back(static_cast<uint8_t>(op.t << 6 | (slot - table.ops.begin())));
    auto idx = [&](uint64_t i) {
      if (i > 255) return false;
      o.push_back(static_cast<uint8_t>(i));
      return true;
    };
    switch (op.code) {
      case OpCode::kMalloc:
        if (!put_size(&o, op.a)) return fail("size not expressible");
        break;
      case OpCode::kFree:
        if (!idx(op.a)) return fail("index above 255");
        break;
      case OpCode::kRealloc:
        if (!idx(op.a)) return fail("index above 255");
        if (!put_size(&o, op.b)) return fail("size not expressible");
        break;
      case OpCode::kMemalign:
        if (op.a >= 22) return fail("alignment log above 21");
        o.push_back(static_cast<uint8_t>(op.a));
        if (!put_size(&o, op.b)) return fail("size not expressible");
        break;
      case OpCode::kCalloc: {
        auto it = std::find(kCallocOverflow.begin(), kCallocOverflow.end(), std::pair{op.a, op.b});
        if (it != kCallocOverflow.end()) {
          o.push_back(static_cast<uint8_t>(240 + (it - kCallocOverflow.begin())));
          o.push_back(0);
          break;
        }
        if (op.a > 64 || (op.a && op.b > kCallocMax / op.a)) return fail("calloc too big");
        o.push_back(static_cast<uint8_t>(op.a));
        if (!put_size(&o, op.b)) return fail("size not expressible");
        break;
      }
      case OpCode::kMallocN:
        if (!put_size(&o, op.a)) return fail("size not expressible");
        last_bs = block_size(op.a);
        if (budget.cut(op.b, last_bs) != op.b) return fail("over the bulk budget");
        if (!put_count(&o, op.b, last_bs)) return fail("count not expressible");
        break;
      case OpCode::kFreeN:
        if (!idx(op.a)) return fail("index above 255");
        if (!put_count(&o, op.b, last_bs)) return fail("count not expressible");
        break;
      case OpCode::kCollect:
      case OpCode::kExit:
        break;
      case OpCode::kTick:
        return fail("the fuzzers' format has no tick");
      case OpCode::kBadFree:
        o.push_back(static_cast<uint8_t>(op.a % hakmodel::kBadKinds));
        if (!idx(op.b)) return fail("index above 255");
        break;
    }
  }
  *out = std::move(o);
  return true;
}

}  // namespace hakfuzz
