#include "api_input.h"

#include <algorithm>
#include <array>
#include <sstream>

namespace hakfuzz {

namespace {

constexpr uint64_t kMax = ~uint64_t{0};
constexpr uint64_t kPtrdiffMax = kMax >> 1;
constexpr uint64_t P(int k) {
  return uint64_t{1} << k;
}

// clang-format off
// Sizes at class, page and region edges, up to 64 MiB (all must succeed).
constexpr std::array<uint64_t, 64> kEdges{
    0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129,
    255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1025, 1280, 1281, 2048, 2049, 4095,
    4096, 4097, 8191, 8192, 8193, 16384, 65535, 65536, 65537, 131072, 262143, 262144,
    262145, P(19), P(20), P(21) - 4096, P(21) - 4095, P(21), P(21) + 1, P(22) - 4096,
    P(22), P(23) + 1, P(24), P(25) - 4096, P(25) - 4095, P(26) - 4096, P(26)};

// Sizes that overflow, fail, or sit between "surely fits" and "never fits".
constexpr std::array<uint64_t, 32> kHuge{
    kMax, kMax - 1, kMax - 4095, kMax - 4096, kMax - 8191, kMax - 8223, kMax - 8224,
    kPtrdiffMax, kPtrdiffMax - 1, kPtrdiffMax + 1, kPtrdiffMax + 2, kPtrdiffMax - 4096,
    kMax / 3, kMax / 3 + 1, P(32), P(32) + 1, P(33), P(31), P(48), P(47), P(47) - 1, P(46),
    P(46) + 1, P(40), P(36), P(62), P(62) + 1, 3 * P(62), P(32) - 1, 2, 3, 65537};

constexpr std::array<uint64_t, 64> kAligns{
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 40, 48, 63, 64, 65, 96,
    100, 127, 128, 129, 255, 256, 257, 384, 512, 1000, 1024, 2048, 4095, 4096, 4097, 8192,
    65536, 65537, P(20), P(21) - 1, P(21), P(21) + 1, P(22), P(25), P(30), P(40), P(46),
    P(47), P(62), P(62) + 1, P(63) - 1, P(63), P(63) + 1, P(63) + 8, kMax - 7, kMax - 1,
    kMax, 3 * P(61), 24 * P(20), sizeof(void*) * 3};
// clang-format on

static_assert(kEdges.back() == P(26) && kHuge.back() == 65537 && kAligns.back() == 24,
              "a table lost an entry (std::array pads missing ones with 0)");

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool empty() const { return pos_ >= n_; }
  uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{u8()} << (8 * i);
    return v;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

uint64_t size_of(Reader& r) {
  uint8_t k = r.u8();
  switch (k >> 6) {
    case 0:
      return kEdges[k & 63];
    case 1:
      return (uint64_t{k & 63u} << 8) | r.u8();
    case 2:
      return kHuge[k & 31];
    default:
      return r.u64();
  }
}

uint64_t align_of(Reader& r) {
  uint8_t k = r.u8();
  switch (k >> 6) {
    case 0:
      return kAligns[k & 63];
    case 1:
      return P(k & 63);
    case 2: {
      // 2^k plus a signed byte, wrapping (without tripping UBSan's unsigned check).
      uint64_t v;
      __builtin_add_overflow(P(k & 63), static_cast<int64_t>(static_cast<int8_t>(r.u8())), &v);
      return v;
    }
    default:
      return r.u64();
  }
}

void put64(std::vector<uint8_t>* o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

template <size_t N>
int index_in(const std::array<uint64_t, N>& t, uint64_t v) {
  auto it = std::find(t.begin(), t.end(), v);
  return it == t.end() ? -1 : static_cast<int>(it - t.begin());
}

void put_size(std::vector<uint8_t>* o, uint64_t v) {
  if (int i = index_in(kEdges, v); i >= 0) {
    o->push_back(static_cast<uint8_t>(i));
  } else if (v < (64u << 8)) {
    o->push_back(static_cast<uint8_t>(64 + (v >> 8)));
    o->push_back(static_cast<uint8_t>(v & 255));
  } else if (int j = index_in(kHuge, v); j >= 0) {
    o->push_back(static_cast<uint8_t>(128 + j));
  } else {
    o->push_back(192);
    put64(o, v);
  }
}

void put_align(std::vector<uint8_t>* o, uint64_t v) {
  if (int i = index_in(kAligns, v); i >= 0) {
    o->push_back(static_cast<uint8_t>(i));
  } else if (v && (v & (v - 1)) == 0) {
    o->push_back(static_cast<uint8_t>(64 + __builtin_ctzll(v)));
  } else {
    o->push_back(192);
    put64(o, v);
  }
}

struct Info {
  const char* name;
  int operands;
  bool align;  // the first operand is an alignment
};
constexpr Info kInfo[kApiOps] = {
    {"malloc", 1, false},        {"calloc", 2, false},  {"realloc", 1, false},
    {"reallocarray", 2, false},  {"memalign", 2, true}, {"aligned_alloc", 2, true},
    {"posix_memalign", 2, true}, {"valloc", 1, false},  {"pvalloc", 1, false},
    {"free", 0, false},          {"usable", 0, false},
};

std::string number_text(uint64_t v) {
  if (v == kMax) return "SIZE_MAX";
  if (v == kPtrdiffMax) return "PTRDIFF_MAX";
  if (v == kPtrdiffMax + 1) return "PTRDIFF_MAX+1";
  if (v < (uint64_t{1} << 32)) return std::to_string(v);
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

}  // namespace

const char* api_name(ApiOp op) {
  return kInfo[static_cast<unsigned>(op)].name;
}
int api_operands(ApiOp op) {
  return kInfo[static_cast<unsigned>(op)].operands;
}

std::vector<ApiCall> decode_api(const uint8_t* data, size_t size) {
  Reader r(data, size);
  std::vector<ApiCall> calls;
  while (!r.empty() && calls.size() < kMaxCalls) {
    uint8_t h = r.u8();
    ApiCall c;
    c.op = static_cast<ApiOp>((h >> 4) % kApiOps);
    c.slot = h & 15;
    const Info& in = kInfo[static_cast<unsigned>(c.op)];
    if (in.operands >= 1) c.a = in.align ? align_of(r) : size_of(r);
    if (in.operands >= 2) c.b = size_of(r);
    calls.push_back(c);
  }
  return calls;
}

std::vector<uint8_t> encode_api(const std::vector<ApiCall>& calls) {
  std::vector<uint8_t> o;
  for (const ApiCall& c : calls) {
    o.push_back(static_cast<uint8_t>(static_cast<unsigned>(c.op) << 4 | (c.slot & 15)));
    const Info& in = kInfo[static_cast<unsigned>(c.op)];
    if (in.operands >= 1) in.align ? put_align(&o, c.a) : put_size(&o, c.a);
    if (in.operands >= 2) put_size(&o, c.b);
  }
  return o;
}

std::string to_text(const ApiCall& c) {
  std::string s = std::string(api_name(c.op)) + " " + std::to_string(c.slot);
  int n = api_operands(c.op);
  if (n >= 1) s += " " + number_text(c.a);
  if (n >= 2) s += " " + number_text(c.b);
  return s;
}

std::string to_text(const std::vector<ApiCall>& calls) {
  std::string s;
  for (const ApiCall& c : calls) s += to_text(c) + "\n";
  return s;
}

bool parse_number(const std::string& s, uint64_t* out) {
  size_t sign = s.find_first_of("+-", 1);
  std::string base = s.substr(0, sign);
  uint64_t v = 0;
  if (base == "SIZE_MAX") {
    v = kMax;
  } else if (base == "PTRDIFF_MAX") {
    v = kPtrdiffMax;
  } else if (base.rfind("2^", 0) == 0) {
    unsigned long k = std::stoul(base.substr(2));
    if (k > 63) return false;
    v = P(static_cast<int>(k));
  } else {
    size_t used = 0;
    try {
      v = std::stoull(base, &used, 0);
    } catch (...) {
      return false;
    }
    if (used != base.size()) return false;
  }
  if (sign != std::string::npos) {
    uint64_t d;
    if (!parse_number(s.substr(sign + 1), &d)) return false;
    if (s[sign] == '+')
      __builtin_add_overflow(v, d, &v);
    else
      __builtin_sub_overflow(v, d, &v);
  }
  *out = v;
  return true;
}

bool parse_api(const std::string& text, std::vector<ApiCall>* out, std::string* err) {
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  std::vector<ApiCall> calls;
  while (std::getline(in, line)) {
    ++lineno;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::string word;
    if (!(ls >> word)) continue;
    auto fail = [&](const std::string& why) {
      *err = "line " + std::to_string(lineno) + ": " + why + ": " + line;
      return false;
    };
    ApiCall c;
    unsigned k = 0;
    while (k < kApiOps && word != kInfo[k].name) ++k;
    if (k == kApiOps) return fail("unknown call");
    c.op = static_cast<ApiOp>(k);
    if (!(ls >> c.slot) || c.slot >= kSlots) return fail("bad slot");
    std::string num;
    for (int i = 0; i < kInfo[k].operands; ++i) {
      uint64_t v;
      if (!(ls >> num) || !parse_number(num, &v)) return fail("bad operand");
      (i == 0 ? c.a : c.b) = v;
    }
    if (ls >> num) return fail("extra operand");
    calls.push_back(c);
  }
  if (calls.size() > kMaxCalls) {
    *err = "more than " + std::to_string(kMaxCalls) + " calls";
    return false;
  }
  *out = std::move(calls);
  return true;
}

}  // namespace hakfuzz
