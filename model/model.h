// The reference model of model/SPEC.md: plain containers, no bit tricks, and no code of
// production (this folder never includes src/; the build checks it).
//
// Production's choices (which address a malloc returns, which of several empty regions
// it keeps warm) are inputs: each operation takes production's snapshot after the call,
// checks that the choice is legal, and applies the rule. compare() then checks that every
// other fact of the snapshot is what the rules predict.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
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
  uint64_t serial = 0;  // distinct per mapping
};
using Snapshot = std::map<uintptr_t, RegionView>;  // by base

struct Config {
  unsigned warm = 1;
  bool ultra = true;
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
    std::set<uintptr_t> live;
    uint32_t pending = 0;
    uint64_t serial = 0;  // production's mapping serial, learnt when the region appeared
  };
  struct Block {
    uintptr_t addr = 0;
    size_t size = 0;    // requested
    size_t usable = 0;  // what the block holds
    uintptr_t region = 0;
  };

  explicit Model(Config c) : cfg_(c) {}
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
  std::string compare(const Snapshot& snap, const std::map<int, uint64_t>& ctx_of,
                      uint64_t errors) const;

  const Region* region_of(uintptr_t p) const;  // interval search
  const Block* block(uintptr_t p) const;
  const std::map<uintptr_t, Block>& blocks() const { return blocks_; }
  const std::map<uintptr_t, Region>& regions() const { return regions_; }
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
  std::map<uintptr_t, Region> regions_;
  std::map<uintptr_t, Block> blocks_;
  uint64_t errors_ = 0;
};

}  // namespace hakmodel
