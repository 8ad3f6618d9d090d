// hakmem's verification interface (C++), part of every build. It lets a test drive
// several simulated threads from one OS thread and observe the heap without changing it.
// Off every hot path. Functions here never allocate through hakmem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hakmem::inspect {

enum class Kind : uint8_t { kNone, kSuperSlab, kUltra, kMid, kLarge };
// Where free(p) would go. kNull for nullptr (a no-op).
enum class Route : uint8_t { kNull, kInvalid, kUltra, kV3, kMid, kLarge };
const char* kind_name(Kind k);
const char* route_name(Route r);

struct RegionInfo {
  uintptr_t base = 0;
  size_t bytes = 0;
  Kind kind = Kind::kNone;
  int cls = -1;            // size class (SUPERSLAB, ULTRA and MID regions), -1 for large
  size_t block_size = 0;   // class block size, or the large block's usable bytes
  uint64_t owner = 0;      // context id; 0 = no owner (abandoned, pooled)
  uint32_t active = 0;     // live blocks (exact when no free is in flight)
  uint32_t pending = 0;    // freed by other threads, not yet collected by the owner
  uint64_t serial = 0;     // distinct per mapping: a region unmapped and mapped again differs
  bool warm = false;       // empty, kept in a warm reserve
  bool abandoned = false;  // owner exited with live blocks in it
  // Class regions: slabs carved since their pages were last given back (their pages may be
  // resident); what the purge rule (SPEC section 4) bounds.
  uint32_t carved_slabs = 0;
};

// Live regions (mapped and in use, warm or abandoned). Fills up to `cap`, returns total.
size_t regions(RegionInfo* out, size_t cap);
// Convenience: allocates the vector outside any lock. Inline, so the library itself needs
// nothing from the C++ standard library.
inline std::vector<RegionInfo> regions() {
  std::vector<RegionInfo> v(64);
  for (;;) {
    size_t n = regions(v.data(), v.size());
    if (n <= v.size()) {
      v.resize(n);
      return v;
    }
    v.resize(n * 2);
  }
}
// The region containing p (interval search over live regions); false if none.
bool region_of(const void* p, RegionInfo* out);
Route route_of(const void* p);
// ULTRA segment at `base`: live blocks per 64 KiB page (exact when no free is in flight).
// False if `base` is not a live ULTRA segment.
inline constexpr size_t kPagesPerSegment = 32;
bool ultra_page_active(uintptr_t base, uint32_t (&out)[kPagesPerSegment]);

struct OsCounts {
  uint64_t maps = 0, unmaps = 0, decommits = 0, bytes_mapped = 0;
};
OsCounts os_counts();

// Collections made by refills (a refill of a slot that would carve fresh memory collects
// that slot's remote frees first) and the regions they visited, over every context, since
// the start. Their ratio is the cost of a refill in regions: it should not grow with the heap.
uint64_t refill_collections();
uint64_t refill_region_visits();

// --- simulated threads ---
struct Context;
Context* context_create();
uint64_t context_id(const Context* c);
// Runs the thread-exit sequence for the context (flush, release empties, abandon the rest)
// and frees it.
void context_exit(Context* c);
// Collection point of the context.
void context_collect(Context* c);
// While alive, hakmem calls on this OS thread act as `c`.
class Use {
 public:
  explicit Use(Context* c);
  ~Use();
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  void* saved_;
};
uint64_t current_context_id();

// --- configuration (tests) ---
struct Settings {
  unsigned warm_regions = 1;
  bool c7_ultra = true;
  bool report_errors = false;   // HAKMEM_ON_ERROR=report
  bool quiet = false;           // do not print reported errors
  uint32_t purge_delay_ms = 0;  // HAKMEM_PURGE_DELAY_MS (tests: at once unless set)
};
Settings settings();
// Applies new settings; regions kept beyond a smaller warm reserve are released.
void set_settings(const Settings& s);
uint64_t error_count();
// Releases what the process keeps for reuse (pooled regions beyond the reserve, cached
// large runs), so a test can start from a known state.
void trim();

// --- the kernel interface ---
// Counts of every map and unmap seen by a recorder; install before any region is mapped
// through it, remove when none is left mapped by it.
class OsRecorder {
 public:
  virtual ~OsRecorder() = default;
  virtual void on_map(void* p, size_t size) = 0;
  virtual void on_unmap(void* p, size_t size) = 0;
  virtual void on_decommit(void* p, size_t size) = 0;
};
void set_os_recorder(OsRecorder* r);  // nullptr removes

// For harnesses that build and tear down a heap thousands of times (the fuzzers, the
// lockstep runs): runs of 2 MiB regions hakmem unmaps (class regions, large runs up to
// 64 MiB) stay mapped, their pages given back (PROT_NONE: an access after release still
// faults), and come back zero at the next map of as many regions
// (src/inspect/recycling.cc). Off (the default) gives the regions back. Either way a region is a
// real mapping, so it may be switched at any time; it replaces an installed recorder.
void set_region_recycling(bool on);

// --- the clock of purge delays ---
// On: hakmem's clock stands still except for advance_clock (starting from 0 ms), so a test
// decides when a delay has passed. Off (the default): the system's monotonic clock.
void set_manual_clock(bool on);
void advance_clock(uint64_t ms);

}  // namespace hakmem::inspect
