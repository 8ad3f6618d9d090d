#include "hakmem/inspect.h"

#include "config/config.h"
#include "front/hot.h"
#include "large/large.h"
#include "os/os.h"
#include "regionmap/region_map.h"
#include "regionmap/registry.h"
#include "thread/context.h"

namespace hakmem::inspect {

using namespace hak;

namespace {

Kind kind_of(RegionKind k) {
  switch (k) {
    case RegionKind::kSuperSlab:
      return Kind::kSuperSlab;
    case RegionKind::kUltra:
      return Kind::kUltra;
    case RegionKind::kMid:
      return Kind::kMid;
    case RegionKind::kLargeHead:
    case RegionKind::kLargeTail:
      return Kind::kLarge;
    default:
      return Kind::kNone;
  }
}

uint64_t owner_id(hak::Context* ctx) {
  return ctx ? ctx->id : 0;
}

// Registry lock held. describe(base).bytes, reading no more than that needs.
size_t bytes_of(uintptr_t base) {
  RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
  if (is_class_region(k)) return kRegionSize;
  if (k == RegionKind::kLargeHead) return reinterpret_cast<LargeHeader*>(base)->run_bytes;
  return 0;
}

// Registry lock held.
RegionInfo describe(uintptr_t base) {
  RegionInfo info;
  info.base = base;
  RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
  info.kind = kind_of(k);
  if (is_class_region(k)) {
    Region* r = reinterpret_cast<Region*>(base);
    info.bytes = kRegionSize;
    info.cls = r->cls;
    info.block_size = r->usable();
    info.owner = owner_id(r->owner.load(std::memory_order_relaxed));
    info.pending = region_pending(r);
    info.active = r->active(info.pending);  // one scan
    info.serial = r->link.serial;
    info.warm = r->warm;
    info.abandoned = r->list == RegionList::kAbandoned;
    info.carved_slabs = static_cast<uint32_t>(__builtin_popcount(r->slab_carved_mask));
  } else if (k == RegionKind::kLargeHead) {
    LargeHeader* h = reinterpret_cast<LargeHeader*>(base);
    info.bytes = h->run_bytes;
    info.block_size = h->user_bytes;
    info.active = 1;
    info.serial = h->link.serial;
  }
  return info;
}

class RecordingOs final : public Os {
 public:
  OsRecorder* rec = nullptr;
  void* map(size_t size, size_t align) override {
    void* p = system_os().map(size, align);
    if (p && rec) rec->on_map(p, size);
    return p;
  }
  void unmap(void* p, size_t size) override {
    if (rec) rec->on_unmap(p, size);
    system_os().unmap(p, size);
  }
  void decommit(void* p, size_t size) override {
    if (rec) rec->on_decommit(p, size);
    system_os().decommit(p, size);
  }
  bool move(void* from, size_t size, void* to) override {
    if (!system_os().move(from, size, to)) return false;
    if (rec) rec->on_unmap(from, size);  // the pages now live in `to`'s mapping
    return true;
  }
};
RecordingOs g_recording;

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "none";
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

const char* route_name(Route r) {
  switch (r) {
    case Route::kNull:
      return "null";
    case Route::kInvalid:
      return "invalid";
    case Route::kUltra:
      return "ultra";
    case Route::kV3:
      return "v3";
    case Route::kMid:
      return "mid";
    case Route::kLarge:
      return "large";
  }
  return "?";
}

size_t regions(RegionInfo* out, size_t cap) {
  size_t n = 0;
  registry_for_each([&](uintptr_t base) {
    if (n < cap) out[n] = describe(base);
    ++n;
  });
  return n;
}

bool region_of(const void* p, RegionInfo* out) {
  // Interval search: the model resolves by intervals too; this one walks the registry.
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  bool found = false;
  registry_for_each([&](uintptr_t base) {
    if (found || a < base || a - base >= bytes_of(base)) return;
    *out = describe(base);
    found = true;
  });
  return found;
}

bool ultra_page_active(uintptr_t base, uint32_t (&out)[kPagesPerSegment]) {
  static_assert(kPagesPerSegment == kSlabsPerRegion);
  bool found = false;
  registry_for_each([&](uintptr_t b) {
    if (b != base || region_kind_of(reinterpret_cast<void*>(b)) != RegionKind::kUltra) return;
    found = true;
    Region* seg = reinterpret_cast<Region*>(b);
    // Live: kLive (freed by another thread, not yet collected, is not live).
    for (unsigned i = 0; i < kSlabsPerRegion; ++i) {
      const SlabMeta& m = seg->slabs[i];
      out[i] = 0;
      for (uint32_t k = m.first; k < m.end; ++k)
        if (seg->states()[k].load(std::memory_order_relaxed) == kLive) ++out[i];
    }
  });
  return found;
}

Route route_of(const void* p) {
  if (!p) return Route::kNull;
  switch (region_kind_of(p)) {
    case RegionKind::kSuperSlab:
      return Route::kV3;
    case RegionKind::kMid:
      return Route::kMid;
    case RegionKind::kUltra:
      return Route::kUltra;
    case RegionKind::kLargeHead:
    case RegionKind::kLargeTail:
      return Route::kLarge;
    case RegionKind::kNone:
      // The regions of a large run past its user pointer's have no map entry.
      return large_run_containing(p) ? Route::kLarge : Route::kInvalid;
  }
  return Route::kInvalid;
}

OsCounts os_counts() {
  OsCounters c = os_counters();
  return {c.maps, c.unmaps, c.decommits, c.bytes_mapped};
}

uint64_t refill_collections() {
  return context_refill_counts().collections;
}
uint64_t refill_region_visits() {
  return context_refill_counts().region_visits;
}

// An inspect::Context is a production context (the type stays opaque to users).
static hak::Context* production(Context* c) {
  return reinterpret_cast<hak::Context*>(c);
}

Context* context_create() {
  ensure_init();
  // The context object itself lives in its own page (no allocation).
  return reinterpret_cast<Context*>(hak::context_create(ContextKind::kSimulated));
}

uint64_t context_id(const Context* c) {
  return reinterpret_cast<const hak::Context*>(c)->id;
}

void context_exit(Context* c) {
  hak::Context* ctx = production(c);
  if (tl_context == ctx) tl_context = &g_sentinel;
  hak::context_exit(ctx);
}

void context_collect(Context* c) {
  hak::context_collect(production(c));
}

Use::Use(Context* c) : saved_(tl_context) {
  tl_context = production(c);
}
Use::~Use() {
  tl_context = static_cast<hak::Context*>(saved_);
}

uint64_t current_context_id() {
  return tl_context == &g_sentinel ? 0 : tl_context->id;
}

Settings settings() {
  ensure_init();
  Settings s;
  s.warm_regions = g_config.warm_regions;
  s.c7_ultra = g_config.c7_ultra;
  s.report_errors = g_config.on_error == OnError::kReport;
  s.quiet = g_config.quiet;
  s.purge_delay_ms = g_config.purge_delay_ms;
  return s;
}

void set_settings(const Settings& s) {
  ensure_init();
  g_config.warm_regions = s.warm_regions;
  g_config.c7_ultra = s.c7_ultra;
  set_c7_ultra(s.c7_ultra);
  g_config.on_error = s.report_errors ? OnError::kReport : OnError::kAbort;
  g_config.quiet = s.quiet;
  g_config.purge_delay_ms = s.purge_delay_ms;
  orphan_trim_pool();
}

uint64_t error_count() {
  return hak::error_count();
}

void trim() {
  orphan_trim_pool();
  large_cache_drain();
}

void set_os_recorder(OsRecorder* r) {
  g_recording.rec = r;
  set_os(r ? &g_recording : nullptr);
}

namespace {
std::atomic<uint64_t> g_manual_ms{0};
uint64_t manual_clock() {
  return g_manual_ms.load(std::memory_order_relaxed);
}
}  // namespace

void set_manual_clock(bool on) {
  g_manual_ms.store(0, std::memory_order_relaxed);
  set_clock(on ? manual_clock : nullptr);
}

void advance_clock(uint64_t ms) {
  g_manual_ms.fetch_add(ms, std::memory_order_relaxed);
}

}  // namespace hakmem::inspect
