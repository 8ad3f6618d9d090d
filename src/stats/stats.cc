#include "stats/stats.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "config/config.h"
#include "large/large.h"
#include "os/os.h"
#include "regionmap/region_map.h"
#include "regionmap/registry.h"
#include "thread/thread_cache.h"
#include "tiny/superslab.h"

namespace hak {
namespace {

// Formats into a fixed buffer and writes to fd: no allocation at exit.
class Out {
 public:
  explicit Out(int fd) : fd_(fd) {}
  ~Out() { flush(); }
  void f(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    size_t len = static_cast<size_t>(n) < sizeof tmp ? static_cast<size_t>(n) : sizeof tmp - 1;
    if (used_ + len > sizeof buf_) flush();
    for (size_t i = 0; i < len; ++i) buf_[used_++] = tmp[i];
  }
  void flush() {
    size_t off = 0;
    while (off < used_) {
      ssize_t w = write(fd_, buf_ + off, used_ - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    used_ = 0;
  }

 private:
  int fd_;
  size_t used_ = 0;
  char buf_[4096];
};

void at_exit() {
  if (g_config.stats) stats_print(2);
  if (g_config.stats_json[0]) stats_write_json(g_config.stats_json);
}

}  // namespace

StatsSnapshot stats_snapshot() noexcept {
  StatsSnapshot s{};
  SuperSlabCounters sc = superslab_counters();
  LargeCounters lc = large_counters();
  OsCounters oc = os_counters();
  s.superslabs_live = sc.live[0];
  s.superslabs_released = sc.released_total[0];
  s.superslabs_mapped_total = sc.mapped_total[0];
  s.mid_live = sc.live[1];
  s.mid_released = sc.released_total[1];
  s.ultra_segments_live = sc.live[2];
  s.ultra_segments_released = sc.released_total[2];
  s.large_live = lc.live;
  s.large_released = lc.released_total;
  s.large_cached = lc.cached;
  s.errors = error_count();
  thread_cache_for_each([&](ThreadCache*) { ++s.contexts_live; });
  s.os_maps = oc.maps;
  s.os_unmaps = oc.unmaps;
  s.os_decommits = oc.decommits;
  s.bytes_mapped = oc.bytes_mapped;
  registry_for_each([&](uintptr_t base) {
    RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
    ++s.regions_live[static_cast<unsigned>(k)];
    if (k == RegionKind::kSuperSlab || k == RegionKind::kMid) {
      SuperSlab* ss = reinterpret_cast<SuperSlab*>(base);
      s.active_blocks[ss->cls] += ss->active();
    } else if (k == RegionKind::kUltra) {
      s.active_ultra += reinterpret_cast<SuperSlab*>(base)->active();
    }
  });
  return s;
}

void stats_init_once() noexcept {
  if (g_config.stats || g_config.stats_json[0]) atexit(at_exit);
}

void stats_print(int fd) noexcept {
  StatsSnapshot s = stats_snapshot();
  Out o(fd);
  o.f("hakmem stats\n");
  o.f("  regions live: superslab %llu, ultra %llu, mid %llu, large %llu\n",
      (unsigned long long)s.regions_live[1], (unsigned long long)s.regions_live[2],
      (unsigned long long)s.regions_live[3], (unsigned long long)s.regions_live[4]);
  o.f("  superslabs: %llu live, %llu released, %llu mapped in all\n",
      (unsigned long long)s.superslabs_live, (unsigned long long)s.superslabs_released,
      (unsigned long long)s.superslabs_mapped_total);
  o.f("  ultra segments: %llu live, %llu released\n", (unsigned long long)s.ultra_segments_live,
      (unsigned long long)s.ultra_segments_released);
  o.f("  mid regions: %llu live, %llu released\n", (unsigned long long)s.mid_live,
      (unsigned long long)s.mid_released);
  o.f("  large runs: %llu live, %llu released, %llu cached\n", (unsigned long long)s.large_live,
      (unsigned long long)s.large_released, (unsigned long long)s.large_cached);
  o.f("  active blocks by class:");
  for (unsigned c = 0; c < kNumClasses; ++c)
    if (s.active_blocks[c])
      o.f(" %zuB=%llu", class_size(c), (unsigned long long)s.active_blocks[c]);
  o.f("\n  os: %llu maps, %llu unmaps, %llu decommits, %llu bytes mapped now\n",
      (unsigned long long)s.os_maps, (unsigned long long)s.os_unmaps,
      (unsigned long long)s.os_decommits, (unsigned long long)s.bytes_mapped);
  o.f("  contexts live: %llu\n", (unsigned long long)s.contexts_live);
  o.f("  errors: %llu\n", (unsigned long long)s.errors);
}

bool stats_write_json(const char* path) noexcept {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  StatsSnapshot s = stats_snapshot();
  {
    Out o(fd);
    o.f("{\"regions_live\":{\"superslab\":%llu,\"ultra\":%llu,\"mid\":%llu,\"large\":%llu},",
        (unsigned long long)s.regions_live[1], (unsigned long long)s.regions_live[2],
        (unsigned long long)s.regions_live[3], (unsigned long long)s.regions_live[4]);
    o.f("\"superslabs_live\":%llu,\"superslabs_released\":%llu,",
        (unsigned long long)s.superslabs_live, (unsigned long long)s.superslabs_released);
    o.f("\"ultra_segments_live\":%llu,\"ultra_segments_released\":%llu,",
        (unsigned long long)s.ultra_segments_live, (unsigned long long)s.ultra_segments_released);
    o.f("\"mid_live\":%llu,\"mid_released\":%llu,", (unsigned long long)s.mid_live,
        (unsigned long long)s.mid_released);
    o.f("\"large_live\":%llu,\"large_released\":%llu,\"large_cached\":%llu,",
        (unsigned long long)s.large_live, (unsigned long long)s.large_released,
        (unsigned long long)s.large_cached);
    o.f("\"active_blocks\":{");
    for (unsigned c = 0; c < kNumClasses; ++c)
      o.f("%s\"%zu\":%llu", c ? "," : "", class_size(c), (unsigned long long)s.active_blocks[c]);
    o.f("},\"active_ultra\":%llu,", (unsigned long long)s.active_ultra);
    o.f("\"os\":{\"maps\":%llu,\"unmaps\":%llu,\"decommits\":%llu,\"bytes_mapped\":%llu},",
        (unsigned long long)s.os_maps, (unsigned long long)s.os_unmaps,
        (unsigned long long)s.os_decommits, (unsigned long long)s.bytes_mapped);
    o.f("\"contexts_live\":%llu,", (unsigned long long)s.contexts_live);
    o.f("\"errors\":%llu}\n", (unsigned long long)s.errors);
  }
  close(fd);
  return true;
}

}  // namespace hak
