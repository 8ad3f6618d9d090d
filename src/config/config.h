// Options, read once from the environment at start (see README "Options"), and the
// error policy for bad input (docs/DESIGN.md section 7).
#pragma once

#include <cstdint>

#include "common/base.h"

namespace hak {

enum class OnError : uint8_t { kAbort, kReport };

// Chosen by measurement (README, Options): a fill/empty loop of 4000 x 64 B goes from
// 61k page faults and 1500 madvise calls to 260 and 0 with any delay; python3's
// alloc_heavy.py (scale 0.5) from 69.8k faults and 84.6 MB peak RSS at 0 to 66.8k and 85.8 MB
// at 10 ms, 62.0k and 92.6 MB at 100 ms (mimalloc: 54-61k, 97 MB).
inline constexpr uint32_t kDefaultPurgeDelayMs = 10;

struct Config {
  unsigned warm_regions = 1;  // HAKMEM_WARM_REGIONS: empty regions kept per context, kind, class
  // HAKMEM_PURGE_DELAY_MS: unused pages go back to the OS after this long; 0 at once.
  uint32_t purge_delay_ms = kDefaultPurgeDelayMs;
  OnError on_error = OnError::kAbort;  // HAKMEM_ON_ERROR=abort|report
  bool stats = false;                  // HAKMEM_STATS=1: report on stderr at exit
  bool c7_ultra = true;                // HAKMEM_TINY_C7_ULTRA=1|0
  bool quiet = false;                  // set by tests/fuzzers: count errors without printing
  char stats_json[256] = {};           // HAKMEM_STATS_JSON=PATH
};

// Read by hot paths; written at initialisation (and by inspect::set_config in tests).
extern Config g_config;

// Reads the options and creates the thread key. Idempotent; allocates nothing and takes
// no glibc lock, so any malloc may call it (the library constructor calls it first).
void ensure_init() noexcept;
bool is_initialized() noexcept;

// Reads the HAKMEM_* variables into a Config (no allocation).
Config config_from_env() noexcept;

// Bad input on a checked path: prints "hakmem: CALL(PTR): REASON" to stderr, counts it,
// and aborts unless HAKMEM_ON_ERROR=report. Returns only in report mode.
HAK_COLD void report_error(const char* call, const void* p, const char* reason) noexcept;
uint64_t error_count() noexcept;

}  // namespace hak
