#include "ops.h"

#include <sstream>

namespace hakmodel {

namespace {

struct Name {
  OpCode code;
  const char* text;
  int operands;  // after T
};
constexpr Name kNames[] = {
    {OpCode::kMalloc, "malloc", 1},    {OpCode::kFree, "free", 1},
    {OpCode::kRealloc, "realloc", 2},  {OpCode::kMemalign, "memalign", 2},
    {OpCode::kCalloc, "calloc", 2},    {OpCode::kCollect, "collect", 0},
    {OpCode::kExit, "exit", 0},        {OpCode::kBadFree, "bad_free", 2},
    {OpCode::kMallocN, "malloc_n", 2}, {OpCode::kFreeN, "free_n", 2},
    {OpCode::kTick, "tick", 1},
};
const char* kBadNames[kBadKinds] = {"interior", "misaligned", "foreign", "double", "tail"};

const Name& name_of(OpCode c) {
  for (const Name& n : kNames)
    if (n.code == c) return n;
  return kNames[0];
}

}  // namespace

std::string to_text(const Op& op) {
  const Name& n = name_of(op.code);
  std::ostringstream o;
  o << n.text << ' ' << op.t;
  if (op.code == OpCode::kBadFree) {
    o << ' ' << kBadNames[op.a % kBadKinds] << ' ' << op.b;
  } else {
    if (n.operands >= 1) o << ' ' << op.a;
    if (n.operands >= 2) o << ' ' << op.b;
  }
  return o.str();
}

std::string to_text(const Trace& tr) {
  std::ostringstream o;
  o << "config warm=" << tr.cfg.warm << " ultra=" << (tr.cfg.ultra ? 1 : 0);
  if (tr.cfg.purge) o << " purge=" << tr.cfg.purge;
  o << "\n";
  for (const Op& op : tr.ops) o << to_text(op) << "\n";
  return o.str();
}

bool parse(const std::string& text, Trace* out, std::string* err) {
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  Trace tr;
  bool have_config = false;
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
    if (word == "config") {
      std::string kv;
      while (ls >> kv) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) return fail("expected key=value");
        std::string k = kv.substr(0, eq);
        unsigned long v = std::stoul(kv.substr(eq + 1));
        if (k == "warm")
          tr.cfg.warm = static_cast<unsigned>(v);
        else if (k == "ultra")
          tr.cfg.ultra = v != 0;
        else if (k == "purge")
          tr.cfg.purge = static_cast<unsigned>(v);
        else
          return fail("unknown config key");
      }
      have_config = true;
      continue;
    }
    const Name* n = nullptr;
    for (const Name& cand : kNames)
      if (word == cand.text) n = &cand;
    if (!n) return fail("unknown op");
    Op op;
    op.code = n->code;
    if (!(ls >> op.t) || op.t < 0 || op.t >= kMaxThreads) return fail("bad thread");
    if (op.code == OpCode::kBadFree) {
      std::string kind;
      if (!(ls >> kind >> op.b)) return fail("expected KIND I");
      op.a = kBadKinds;
      for (uint64_t i = 0; i < kBadKinds; ++i)
        if (kind == kBadNames[i]) op.a = i;
      if (op.a == kBadKinds) return fail("unknown bad_free kind");
    } else {
      if (n->operands >= 1 && !(ls >> op.a)) return fail("missing operand");
      if (n->operands >= 2 && !(ls >> op.b)) return fail("missing operand");
    }
    tr.ops.push_back(op);
  }
  if (!have_config) {
    *err = "no config line";
    return false;
  }
  *out = tr;
  return true;
}

}  // namespace hakmodel
