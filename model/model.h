// The reference model of model/SPEC.md: plain containers, no bit tricks, and no code of
// production (this folder never includes src/; the build checks it).
//
// Production's choices (which address a malloc returns, which of several empty regions
// it keeps warm) are inputs: each operation takes production's snapshot after the call,
// checks that the choice is legal, and applies the rule. compare() then checks that every
// other fact of the snapshot is what the rules predict.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <new>
#include <string>
#include <vector>

namespace hakmodel {

enum class Kind { kSuperSlab, kUltra, kMid, kLarge };
const char* kind_name(Kind k);

inline constexpr int kNumClasses = 40;
inline constexpr int kUltraSlot = 40;  // the ULTRA slot (C7 on ULTRA segments)
inline constexpr int kLargeSlot = -1;
inline constexpr size_t kRegionSize = size_t{2} << 20;

// Class sizes: C0..C7 = 8..1024, then four per doubling up to 256 KiB.
size_t class_size(int cls);
int size_to_class(size_t n);                            // n <= 256 KiB
int size_to_slot(size_t n, bool ultra);                 // kLargeSlot above 256 KiB
int memalign_slot(size_t align, size_t n, bool ultra);  // align: a power of two
size_t slot_block_size(int slot);
int slot_class(int slot);
Kind slot_kind(int slot);

// What production shows of one region (from its inspect snapshot).
struct RegionView {
  uintptr_t base = 0;
  size_t bytes = 0;
  Kind kind = Kind::kSuperSlab;
  int cls = -1;
  uint64_t owner = 0;  // context id, 0 = none
  uint32_t active = 0;
  uint32_t pending = 0;
  bool warm = false;
  bool abandoned = false;
  uint64_t serial = 0;        // distinct per mapping
  uint32_t carved_slabs = 0;  // slabs whose pages may be resident (the purge rule)
};
// Production's regions after a call, in any order; sorted by base on the first search. A
// flat vector, refilled in place by the interpreter after every op (no allocation once it
// has grown; the per-op comparison, Model::agrees, needs no sort).
class Snapshot {
 public:
  using const_iterator = std::vector<RegionView>::const_iterator;
  const_iterator begin() const {
    sort();
    return v_.begin();
  }
  const_iterator end() const { return v_.end(); }
  const RegionView* data() const { return v_.data(); }  // unsorted
  size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }
  void clear() {
    v_.clear();
    sorted_ = true;
  }
  void reserve(size_t n) { v_.reserve(n); }
  void add(const RegionView& r) {
    v_.push_back(r);
    sorted_ = false;
  }
  // The region at `base`, nullptr if none.
  const RegionView* find(uintptr_t base) const {
    sort();
    auto it = std::lower_bound(v_.begin(), v_.end(), base,
                               [](const RegionView& r, uintptr_t b) { return r.base < b; });
    return it != v_.end() && it->base == base ? &*it : nullptr;
  }
  // The region containing `p`, nullptr if none.
  const RegionView* containing(uintptr_t p) const {
    sort();
    auto it = std::upper_bound(v_.begin(), v_.end(), p,
                               [](uintptr_t a, const RegionView& r) { return a < r.base; });
    if (it == v_.begin()) return nullptr;
    --it;
    return p - it->base < it->bytes ? &*it : nullptr;
  }

 private:
  void sort() const {
    if (sorted_) return;
    std::sort(v_.begin(), v_.end(),
              [](const RegionView& a, const RegionView& b) { return a.base < b.base; });
    sorted_ = true;
  }
  mutable std::vector<RegionView> v_;
  mutable bool sorted_ = true;
};

// Node allocator of the model's maps: nodes come in chunks of 256 and freed ones go to a
// per-type free list and are reused, so that a run allocates only above the previous
// runs' high-water mark (under ASan every malloc costs a stack trace and a quarantine
// slot, and libFuzzer runs an input twice more when it allocates more than it frees; the
// fuzzers made one per block). Chunks are never given back; a list of them keeps them
// reachable (no leak report).
template <class T>
class NodePool {
 public:
  using value_type = T;
  NodePool() = default;
  template <class U>
  NodePool(const NodePool<U>&) {}  // NOLINT: allocators convert implicitly
  T* allocate(size_t n) {
    if (n != 1) return static_cast<T*>(::operator new(n * sizeof(Slot)));
    if (!head()) {
      auto* chunk = static_cast<Slot*>(::operator new(kChunk * sizeof(Slot)));
      chunk[0].f.next = chunks();  // slot 0 links the chunks
      chunks() = &chunk[0].f;
      for (size_t i = kChunk - 1; i >= 1; --i) {
        chunk[i].f.next = head();
        head() = &chunk[i].f;
      }
    }
    Free* f = head();
    head() = f->next;
    return reinterpret_cast<T*>(f);
  }
  void deallocate(T* p, size_t n) {
    if (n != 1) {
      ::operator delete(p);
      return;
    }
    Free* f = reinterpret_cast<Free*>(p);
    f->next = head();
    head() = f;
  }
  template <class U>
  bool operator==(const NodePool<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const NodePool<U>&) const {
    return false;
  }

 private:
  struct Free {
    Free* next;
  };
  union Slot {
    Free f;
    alignas(T) unsigned char t[sizeof(T)];
  };
  static constexpr size_t kChunk = 256;
  static Free*& head() {
    static thread_local Free* h = nullptr;
    return h;
  }
  static Free*& chunks() {
    static thread_local Free* c = nullptr;
    return c;
  }
};
template <class K, class V>
using PoolMap = std::map<K, V, std::less<K>, NodePool<std::pair<const K, V>>>;

struct Config {
  unsigned warm = 1;
  bool ultra = true;
  // HAKMEM_PURGE_DELAY_MS of the run. Its clock is manual: only tick ops advance it.
  unsigned purge = 0;
};

class Model {
 public:
  enum class State { kOwned, kWarm, kPooled, kAbandoned };
  struct Region {
    uintptr_t base = 0;
    size_t bytes = 0;
    Kind kind = Kind::kSuperSlab;
    int slot = kLargeSlot;
    int owner = -1;  // simulated thread, -1 = none
    State state = State::kOwned;
    uint32_t live = 0;  // live blocks
    uint32_t pending = 0;
    uint64_t serial = 0;        // production's mapping serial, learnt when the region appeared
    mutable uint64_t seen = 0;  // agrees(): the call that last matched it
  };
  struct Block {
    uintptr_t addr = 0;
    size_t size = 0;    // requested
    size_t usable = 0;  // what the block holds
    uintptr_t region = 0;
  };

  explicit Model(Config c) : cfg_(c) {}
  // Fills the node pools with room for this many blocks and regions (once per process,
  // so that runs do not allocate as they grow; libFuzzer re-runs an input that does).
  static void reserve(size_t blocks, size_t regions);
  const Config& config() const { return cfg_; }

  // Each returns "" when legal, else what is wrong. `snap` is production after the call.
  std::string on_malloc(int t, int slot, size_t size, uintptr_t p, size_t usable,
                        const Snapshot& snap);
  std::string on_free(int t, uintptr_t p, const Snapshot& snap);
  std::string on_resize(uintptr_t p, size_t size, size_t usable);  // realloc in place
  std::string on_collect(int t, const Snapshot& snap);
  std::string on_exit(int t, const Snapshot& snap);
  void on_error() { ++errors_; }

  // Full comparison with production; ctx_of maps a simulated thread to its context id.
  // Every region and the error count are compared; a message is built only when they
  // differ (the interpreter calls this after every op).
  std::string compare(const Snapshot& snap, const std::map<int, uint64_t>& ctx_of,
                      uint64_t errors) const;
  bool agrees(const Snapshot& snap, const std::map<int, uint64_t>& ctx_of, uint64_t errors) const;

  const Region* region_of(uintptr_t p) const;  // interval search
  const Block* block(uintptr_t p) const;
  const PoolMap<uintptr_t, Block>& blocks() const { return blocks_; }
  const PoolMap<uintptr_t, Region>& regions() const { return regions_; }
  unsigned warm_count(int t, int slot) const;
  unsigned pool_count(int slot) const;

 private:
  std::string empty_rule(int t, uintptr_t base);
  // Regions in `empties` (same slot) get `keep` places in a reserve; production's snapshot
  // says which were kept. Kept ones get `kept_state`, the others are released.
  std::string keep_some(const std::vector<uintptr_t>& empties, unsigned keep, State kept_state,
                        int owner, const Snapshot& snap, const char* what);
  std::string collect_slot(int t, int slot, const Snapshot& snap);
  Region* region_of_mut(uintptr_t p);

  Config cfg_;
  PoolMap<uintptr_t, Region> regions_;
  PoolMap<uintptr_t, Block> blocks_;
  uint64_t errors_ = 0;
  mutable uint64_t agrees_calls_ = 0;
};

}  // namespace hakmodel
