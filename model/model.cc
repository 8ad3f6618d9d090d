#include "model.h"

#include <set>
#include <sstream>

namespace hakmodel {

namespace {

std::string hex(uintptr_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

const char* state_name(Model::State s) {
  switch (s) {
    case Model::State::kOwned:
      return "owned";
    case Model::State::kWarm:
      return "warm";
    case Model::State::kPooled:
      return "pooled";
    case Model::State::kAbandoned:
      return "abandoned";
  }
  return "?";
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kSuperSlab:
      return "superslab";
    case Kind::kUltra:
      return "ultra";
    case Kind::kMid:
      return "mid";
    case Kind::kLarge:
      return "large";
  }
  return "?";
}

size_t class_size(int cls) {
  if (cls < 8) return size_t{8} << cls;
  int m = cls - 8;     // four classes per doubling above 1024
  int e = 11 + m / 4;  // sizes in (2^(e-1), 2^e]
  size_t step = size_t{1} << (e - 3);
  return (size_t{1} << (e - 1)) + static_cast<size_t>(m % 4 + 1) * step;
}

int size_to_class(size_t n) {
  for (int c = 0; c < kNumClasses; ++c)
    if (class_size(c) >= n) return c;
  return kLargeSlot;
}

int size_to_slot(size_t n, bool ultra) {
  if (n > class_size(kNumClasses - 1)) return kLargeSlot;
  int c = size_to_class(n == 0 ? 1 : n);
  return (c == 7 && ultra) ? kUltraSlot : c;
}

int memalign_slot(size_t align, size_t n, bool ultra) {
  size_t mid_max = class_size(kNumClasses - 1);
  if (align <= 16) return size_to_slot(n < align ? align : n, ultra);
  size_t s = n < align ? align : n;
  if (s <= 256 || (s <= 1024 && align <= 64)) return size_to_slot(s, ultra);
  if (s <= 1024) s = 1025;  // C6 and C7 blocks are 64-byte aligned: a mid block
  if (s <= mid_max) {
    if (align <= 256) return size_to_slot(s, ultra);
    size_t p2 = 1;
    while (p2 < s) p2 *= 2;
    if (p2 <= mid_max) return size_to_slot(p2, ultra);
  }
  return kLargeSlot;
}

int slot_class(int slot) {
  return slot == kUltraSlot ? 7 : slot;
}
size_t slot_block_size(int slot) {
  return class_size(slot_class(slot));
}
Kind slot_kind(int slot) {
  if (slot == kLargeSlot) return Kind::kLarge;
  if (slot == kUltraSlot) return Kind::kUltra;
  return slot < 8 ? Kind::kSuperSlab : Kind::kMid;
}

void Model::reserve(size_t blocks, size_t regions) {
  PoolMap<uintptr_t, Block> b;
  for (size_t i = 0; i < blocks; ++i) b.emplace_hint(b.end(), i, Block{});
  PoolMap<uintptr_t, Region> r;
  for (size_t i = 0; i < regions; ++i) r.emplace_hint(r.end(), i, Region{});
}

const Model::Region* Model::region_of(uintptr_t p) const {
  auto it = regions_.upper_bound(p);
  if (it == regions_.begin()) return nullptr;
  --it;
  return p < it->second.base + it->second.bytes ? &it->second : nullptr;
}

Model::Region* Model::region_of_mut(uintptr_t p) {
  return const_cast<Region*>(region_of(p));
}

const Model::Block* Model::block(uintptr_t p) const {
  auto it = blocks_.find(p);
  return it == blocks_.end() ? nullptr : &it->second;
}

unsigned Model::warm_count(int t, int slot) const {
  unsigned n = 0;
  for (const auto& [b, r] : regions_)
    if (r.owner == t && r.slot == slot && r.state == State::kWarm) ++n;
  return n;
}

unsigned Model::pool_count(int slot) const {
  unsigned n = 0;
  for (const auto& [b, r] : regions_)
    if (r.slot == slot && r.state == State::kPooled) ++n;
  return n;
}

std::string Model::on_malloc(int t, int slot, size_t size, uintptr_t p, size_t usable,
                             const Snapshot& snap) {
  // A refill may have been a collection point of any of t's slots (SPEC section 3). It
  // happens before the block is taken (refill collects, then picks a region), so it is
  // applied first: the block may come from a region that the collection emptied and kept
  // warm. A slot counts as collected when one of its regions' pending count dropped.
  if (slot != kLargeSlot) {
    uint64_t collected = 0;  // a bit per slot (no allocation per op)
    for (const auto& [b, reg] : regions_) {
      if (reg.owner != t || reg.kind == Kind::kLarge || reg.pending == 0) continue;
      const RegionView* v = snap.find(b);
      if (!v || v->pending < reg.pending) collected |= uint64_t{1} << reg.slot;
    }
    for (int s = 0; collected; ++s, collected >>= 1) {
      if (!(collected & 1)) continue;
      if (std::string e = collect_slot(t, s, snap); !e.empty()) return e;
    }
  }
  Kind want = slot_kind(slot);
  Region* r = region_of_mut(p);
  if (!r) {
    // A newly mapped region: production's snapshot says where it is.
    const RegionView* v = nullptr;
    for (size_t i = 0; i < snap.size(); ++i)  // in production's order: no sort needed
      if (const RegionView& view = snap.data()[i]; p >= view.base && p < view.base + view.bytes)
        v = &view;
    if (!v) return "malloc returned " + hex(p) + ", which is in no region hakmem reports";
    Region nr;
    nr.base = v->base;
    nr.bytes = v->bytes;
    nr.kind = v->kind;
    nr.serial = v->serial;
    nr.slot = slot;
    nr.owner = want == Kind::kLarge ? -1 : t;
    if (nr.kind != want)
      return std::string("new region is ") + kind_name(nr.kind) + ", expected " + kind_name(want);
    if (want != Kind::kLarge && (nr.bytes != kRegionSize || nr.base % kRegionSize != 0))
      return "new class region is not one aligned 2 MiB region";
    if (want == Kind::kLarge && (nr.bytes % kRegionSize != 0 || nr.base % kRegionSize != 0))
      return "new large run is not a run of aligned regions";
    for (const auto& [b, other] : regions_)
      if (nr.base < other.base + other.bytes && other.base < nr.base + nr.bytes)
        return "new region overlaps a known one";
    r = &regions_.emplace(nr.base, nr).first->second;
  } else {
    if (r->kind != want || r->slot != slot)
      return "malloc of slot " + std::to_string(slot) + " returned " + hex(p) + " in a " +
             kind_name(r->kind) + " region of slot " + std::to_string(r->slot);
    if (want == Kind::kLarge) return "malloc returned a pointer inside a live large run";
    switch (r->state) {
      case State::kOwned:
      case State::kWarm:
        if (r->owner != t)
          return "malloc by thread " + std::to_string(t) + " took a block of thread " +
                 std::to_string(r->owner) + "'s region";
        break;
      case State::kPooled:     // taken from the shared pool
      case State::kAbandoned:  // adopted
        r->owner = t;
        break;
    }
    r->state = State::kOwned;
  }
  // Inside the region's block area, no overlap with a live block.
  if (p < r->base || p + usable > r->base + r->bytes)
    return "block " + hex(p) + " sticks out of its region";
  auto next = blocks_.lower_bound(p);
  if (next != blocks_.end() && next->first < p + usable)
    return "block " + hex(p) + " overlaps live block " + hex(next->first);
  if (next != blocks_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.usable > p)
      return "block " + hex(p) + " overlaps live block " + hex(prev->first);
  }
  ++r->live;
  blocks_.emplace_hint(next, p, Block{p, size, usable, r->base});
  return "";
}

std::string Model::empty_rule(int t, uintptr_t base) {
  Region& r = regions_.at(base);
  r.pending = 0;
  if (warm_count(t, r.slot) < cfg_.warm) {
    r.state = State::kWarm;
  } else {
    regions_.erase(base);
  }
  return "";
}

std::string Model::on_free(int t, uintptr_t p, const Snapshot& snap) {
  (void)snap;
  auto bit = blocks_.find(p);
  if (bit == blocks_.end()) return "free of " + hex(p) + ", which the model has no live block at";
  Region& r = regions_.at(bit->second.region);
  blocks_.erase(bit);
  --r.live;
  if (r.kind == Kind::kLarge) {
    regions_.erase(r.base);
    return "";
  }
  if (r.state == State::kAbandoned) {
    if (r.live == 0) {
      r.owner = -1;
      if (pool_count(r.slot) < cfg_.warm)
        r.state = State::kPooled;
      else
        regions_.erase(r.base);
    }
    return "";
  }
  if (r.owner == t) {
    // With remote frees pending it waits for the owner's next collection point.
    if (r.live == 0 && r.pending == 0) return empty_rule(t, r.base);
    return "";
  }
  ++r.pending;  // remote: the owner collects it later
  return "";
}

std::string Model::on_resize(uintptr_t p, size_t size, size_t usable) {
  auto it = blocks_.find(p);
  if (it == blocks_.end()) return "realloc in place of a block the model does not have";
  if (size > it->second.usable) return "realloc kept " + hex(p) + " but the new size does not fit";
  auto r = regions_.find(it->second.region);
  if (r != regions_.end() && r->second.kind == Kind::kLarge) {
    // SPEC 3: a large block kept in place shrinks to the run malloc(size) would map at
    // the same offset; the regions past it are released.
    size_t off = p - r->second.base;
    size_t run = (off + (size ? size : 1) + kRegionSize - 1) / kRegionSize * kRegionSize;
    if (run < r->second.bytes) r->second.bytes = run;
    if (usable != r->second.bytes - off)
      return "realloc in place of a large block: usable " + std::to_string(usable) + ", expected " +
             std::to_string(r->second.bytes - off);
    it->second.usable = usable;
  } else if (usable != it->second.usable) {
    return "realloc in place changed the usable size";
  }
  it->second.size = size;
  return "";
}

std::string Model::keep_some(const std::vector<uintptr_t>& empties, unsigned keep, State kept_state,
                             int owner, const Snapshot& snap, const char* what) {
  unsigned kept = 0;
  for (uintptr_t b : empties) {
    const RegionView* v = snap.find(b);
    // Same base and same mapping: kept. (A new region at the same address is another one.)
    if (v && v->serial == regions_.at(b).serial) {
      ++kept;
      Region& r = regions_.at(b);
      r.state = kept_state;
      r.owner = owner;
      r.pending = 0;
    } else {
      regions_.erase(b);
    }
  }
  unsigned want = empties.size() < keep ? static_cast<unsigned>(empties.size()) : keep;
  if (kept != want)
    return std::string(what) + ": " + std::to_string(empties.size()) + " empty regions, room for " +
           std::to_string(keep) + ", so " + std::to_string(want) +
           " should stay mapped; hakmem kept " + std::to_string(kept);
  return "";
}

std::string Model::collect_slot(int t, int slot, const Snapshot& snap) {
  std::vector<uintptr_t> empties;
  for (auto& [b, r] : regions_) {
    if (r.owner != t || r.slot != slot) continue;
    r.pending = 0;
    if (r.live == 0 && r.state == State::kOwned) empties.push_back(b);
  }
  unsigned warm = warm_count(t, slot);
  unsigned room = warm < cfg_.warm ? cfg_.warm - warm : 0;
  return keep_some(empties, room, State::kWarm, t, snap, "collection");
}

std::string Model::on_collect(int t, const Snapshot& snap) {
  std::set<int> slots;
  for (const auto& [b, r] : regions_)
    if (r.owner == t && r.kind != Kind::kLarge) slots.insert(r.slot);
  for (int s : slots)
    if (auto e = collect_slot(t, s, snap); !e.empty()) return e;
  // The purge rule (SPEC section 4): collect gives back, whatever the delay, the pages of
  // t's warm regions but the slab t carves from, and those of every pooled region.
  for (const auto& [b, r] : regions_) {
    bool warm = r.owner == t && r.state == State::kWarm, pooled = r.state == State::kPooled;
    if (!warm && !pooled) continue;
    const RegionView* v = snap.find(b);
    if (!v) continue;  // the region comparison reports it
    if (v->carved_slabs > (warm ? 1u : 0u))
      return std::string(warm ? "warm" : "pooled") + " region " + hex(b) + " keeps " +
             std::to_string(v->carved_slabs) + " slabs of pages after collect (at most " +
             (warm ? "1" : "0") + ")";
  }
  return "";
}

std::string Model::on_exit(int t, const Snapshot& snap) {
  std::map<int, std::vector<uintptr_t>> empties;
  for (auto& [b, r] : regions_) {
    if (r.owner != t || r.kind == Kind::kLarge) continue;
    r.pending = 0;
    if (r.live == 0) {
      empties[r.slot].push_back(b);
    } else {
      r.state = State::kAbandoned;
      r.owner = -1;
    }
  }
  for (auto& [slot, list] : empties) {
    unsigned pooled = pool_count(slot);
    unsigned room = pooled < cfg_.warm ? cfg_.warm - pooled : 0;
    if (auto e = keep_some(list, room, State::kPooled, -1, snap, "thread exit"); !e.empty())
      return e;
  }
  return "";
}

namespace {

// What production should report for the model's region r: the fields compare() and
// agrees() check (owner as a context id through ctx_of; ~0 for a thread with none).
template <class R>
RegionView expected_view(const R& r, const std::map<int, uint64_t>& ctx_of) {
  RegionView v;
  v.base = r.base;
  v.bytes = r.bytes;
  v.kind = r.kind;
  v.cls = r.kind == Kind::kLarge ? -1 : slot_class(r.slot);
  if (r.owner >= 0 && r.kind != Kind::kLarge) {
    auto c = ctx_of.find(r.owner);
    v.owner = c == ctx_of.end() ? ~uint64_t{0} : c->second;
  }
  v.active = r.live;
  v.pending = r.pending;
  v.warm = r.state == Model::State::kWarm || r.state == Model::State::kPooled;
  v.abandoned = r.state == Model::State::kAbandoned;
  return v;
}

bool same_fields(const RegionView& a, const RegionView& b) {
  return a.kind == b.kind && a.bytes == b.bytes && a.cls == b.cls && a.owner == b.owner &&
         a.active == b.active && a.pending == b.pending && a.warm == b.warm &&
         a.abandoned == b.abandoned;
}

}  // namespace

std::string Model::compare(const Snapshot& snap, const std::map<int, uint64_t>& ctx_of,
                           uint64_t errors) const {
  std::ostringstream o;
  for (const auto& [b, r] : regions_) {
    const RegionView* found = snap.find(b);
    if (!found) {
      o << "region " << hex(b) << " (" << kind_name(r.kind) << ", slot " << r.slot << ", "
        << state_name(r.state) << ", live " << r.live << ") should be mapped; hakmem released it\n";
      continue;
    }
    const RegionView& v = *found;
    const RegionView want = expected_view(r, ctx_of);
    const uint64_t owner = want.owner;
    const int cls = want.cls;
    if (v.serial != r.serial) {
      o << "region " << hex(b)
        << " should be mapped; hakmem released it and mapped another there\n";
      continue;
    }
    if (!same_fields(v, want)) {
      o << "region " << hex(b) << ": expected " << kind_name(r.kind) << " of " << r.bytes
        << " bytes class " << cls << " owner " << owner << " live " << r.live << " pending "
        << r.pending << " " << state_name(r.state) << "; hakmem says " << kind_name(v.kind)
        << " of " << v.bytes << " bytes class " << v.cls << " owner " << v.owner << " active "
        << v.active << " pending " << v.pending << (v.warm ? " warm" : "")
        << (v.abandoned ? " abandoned" : "") << "\n";
    }
  }
  for (const RegionView& v : snap)
    if (!regions_.count(v.base))
      o << "hakmem has region " << hex(v.base) << " (" << kind_name(v.kind) << " class " << v.cls
        << ", active " << v.active << (v.warm ? ", warm" : "")
        << ") that the rules say is not mapped\n";
  if (errors != errors_)
    o << "errors: expected " << errors_ << ", hakmem counted " << errors << "\n";
  if (o.tellp() == 0 && !agrees(snap, ctx_of, errors))
    o << "hakmem lists " << snap.size() << " regions, the model knows " << regions_.size()
      << " (a region listed twice)\n";
  return o.str();
}

// compare()'s checks without building a message or sorting the snapshot: the same
// number of regions, and each of production's is the model's region at its base (found
// once: a region listed twice is a difference too).
bool Model::agrees(const Snapshot& snap, const std::map<int, uint64_t>& ctx_of,
                   uint64_t errors) const {
  if (errors != errors_ || snap.size() != regions_.size()) return false;
  uint64_t call = ++agrees_calls_;
  const RegionView* views = snap.data();
  for (size_t i = 0; i < snap.size(); ++i) {
    const RegionView* v = &views[i];
    auto it = regions_.find(v->base);
    if (it == regions_.end()) return false;
    const Region& r = it->second;
    if (r.seen == call || v->serial != r.serial) return false;
    r.seen = call;
    if (!same_fields(*v, expected_view(r, ctx_of))) return false;
  }
  return true;
}

}  // namespace hakmodel
