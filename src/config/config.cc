#include "config/config.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stats/stats.h"
#include "thread/context.h"
#include "tiny/size_class.h"

namespace hak {

Config g_config;

namespace {

std::atomic<int> g_init_state{0};  // 0 none, 1 in progress, 2 done
std::atomic<uint64_t> g_errors{0};
SpinLock g_init_lock;

bool env_flag(const char* v) {
  return v && (v[0] == '1' || v[0] == 'y' || v[0] == 'Y' || v[0] == 't' || v[0] == 'T');
}

}  // namespace

Config config_from_env() noexcept {
  Config c;
  if (const char* v = getenv("HAKMEM_WARM_REGIONS")) {
    char* end = nullptr;
    unsigned long n = strtoul(v, &end, 10);
    if (end != v && n <= 1024) c.warm_regions = static_cast<unsigned>(n);
  }
  if (const char* v = getenv("HAKMEM_PURGE_DELAY_MS")) {
    char* end = nullptr;
    unsigned long n = strtoul(v, &end, 10);
    if (end != v && n <= 3600u * 1000u) c.purge_delay_ms = static_cast<uint32_t>(n);
  }
  if (const char* v = getenv("HAKMEM_ON_ERROR")) {
    if (strcmp(v, "report") == 0) c.on_error = OnError::kReport;
  }
  c.stats = env_flag(getenv("HAKMEM_STATS"));
  if (const char* v = getenv("HAKMEM_TINY_C7_ULTRA")) c.c7_ultra = v[0] != '0';
  if (const char* v = getenv("HAKMEM_STATS_JSON")) {
    strncpy(c.stats_json, v, sizeof(c.stats_json) - 1);
  }
  return c;
}

bool is_initialized() noexcept {
  return g_init_state.load(std::memory_order_acquire) == 2;
}

void ensure_init() noexcept {
  // acquire: pairs with the release below so the options are seen complete.
  if (HAK_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return;
  SpinGuard g(g_init_lock);
  if (g_init_state.load(std::memory_order_relaxed) == 2) return;
  // Nothing here allocates or takes a glibc lock: it may run inside any malloc (one that
  // comes before the constructors, from glibc holding a lock of its own).
  g_config = config_from_env();
  set_c7_ultra(g_config.c7_ultra);
  thread_init_once();
  g_init_state.store(2, std::memory_order_release);
}

namespace {

// The process-level handlers (pthread_atfork, atexit) are registered here and nowhere
// else: glibc may call malloc while holding the locks those calls take (atexit grows its
// table with calloc under __exit_funcs_lock), so registering them from inside a malloc
// could deadlock. A library constructor runs before the program's constructors (whose
// atfork handlers then come after ours: their prepare handlers run before hakmem takes
// its locks, their child handlers after it released them). Priority 101: before other
// constructors of the same object (libhakmem.a linked into a program).
__attribute__((constructor(101))) void process_init() {
  ensure_init();
  thread_register_atfork();
  stats_init_once();
}

}  // namespace

uint64_t error_count() noexcept {
  return g_errors.load(std::memory_order_relaxed);
}

void report_error(const char* call, const void* p, const char* reason) noexcept {
  g_errors.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  if (!g_config.quiet || g_config.on_error == OnError::kAbort) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "hakmem: %s(%p): %s%s\n", call, p, reason,
                     g_config.on_error == OnError::kAbort
                         ? " (aborting; HAKMEM_ON_ERROR=report to continue)"
                         : "");
    if (n > 0) {
      ssize_t w = write(
          2, buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
      (void)w;
    }
  }
  if (g_config.on_error == OnError::kAbort) abort();
}

}  // namespace hak
