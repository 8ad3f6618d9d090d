#include "stats/stats.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "config/config.h"
#include "large/large.h"
#include "os/os.h"
#include "region/region.h"
#include "regionmap/region_map.h"
#include "regionmap/registry.h"
#include "thread/context.h"

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

// HAKMEM_STATS=1: a duplicate of stderr taken at start. Programs that close stderr at
// exit (coreutils' close_stdout, an atexit handler that runs before ours) would lose the
// report otherwise. If the descriptor was closed or now names another file (the program
// dup2'd over it), the report goes to fd 2 instead: never into the program's files.
int g_report_fd = -1;
struct stat g_report_file;

void at_exit() {
  if (g_config.stats) stats_print(stats_fd());
  if (g_config.stats_json[0]) stats_write_json(g_config.stats_json);
}

}  // namespace

int stats_fd() noexcept {
  struct stat now;
  if (g_report_fd >= 0 && fstat(g_report_fd, &now) == 0 && now.st_dev == g_report_file.st_dev &&
      now.st_ino == g_report_file.st_ino && now.st_rdev == g_report_file.st_rdev)
    return g_report_fd;
  return 2;
}

StatsSnapshot stats_snapshot() noexcept {
  StatsSnapshot s{};
  RegionCounters sc = region_counters();
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
  context_for_each([&](Context*) { ++s.contexts_live; });
  s.os_maps = oc.maps;
  s.os_unmaps = oc.unmaps;
  s.os_decommits = oc.decommits;
  s.bytes_mapped = oc.bytes_mapped;
  registry_for_each([&](uintptr_t base) {
    RegionKind k = region_kind_of(reinterpret_cast<void*>(base));
    ++s.regions_live[static_cast<unsigned>(k)];
    if (is_class_region(k)) {
      Region* r = reinterpret_cast<Region*>(base);
      uint32_t active = r->active();
      (k == RegionKind::kUltra ? s.active_ultra : s.active_blocks[r->cls]) += active;
      s.bytes_in_blocks += uint64_t{active} * r->usable();
    } else if (k == RegionKind::kLargeHead) {
      const LargeHeader* h = reinterpret_cast<const LargeHeader*>(base);
      s.bytes_in_blocks += h->user_bytes;
      s.large_bytes += h->run_bytes;
    }
  });
  return s;
}

void stats_init_once() noexcept {
  if (g_config.stats) {
    g_report_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (g_report_fd >= 0 && fstat(g_report_fd, &g_report_file) != 0) {
      close(g_report_fd);
      g_report_fd = -1;
    }
  }
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
  o.f("  bytes: %llu in live blocks, %llu in large runs\n", (unsigned long long)s.bytes_in_blocks,
      (unsigned long long)s.large_bytes);
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
    o.f("\"bytes_in_blocks\":%llu,\"large_bytes\":%llu,", (unsigned long long)s.bytes_in_blocks,
        (unsigned long long)s.large_bytes);
    o.f("\"contexts_live\":%llu,", (unsigned long long)s.contexts_live);
    o.f("\"errors\":%llu}\n", (unsigned long long)s.errors);
  }
  close(fd);
  return true;
}

}  // namespace hak
