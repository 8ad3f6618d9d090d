// Counters and the exit report (HAKMEM_STATS=1 on stderr, HAKMEM_STATS_JSON=PATH).
#pragma once

#include <cstdint>

#include "tiny/size_class.h"

namespace hak {

struct StatsSnapshot {
  uint64_t regions_live[9];  // by RegionKind (large tails not counted: one per run)
  uint64_t superslabs_live, superslabs_released, superslabs_mapped_total;
  uint64_t mid_live, mid_released;
  uint64_t ultra_segments_live, ultra_segments_released;
  uint64_t large_live, large_released, large_cached;
  uint64_t active_blocks[kNumClasses];
  uint64_t active_ultra;
  uint64_t contexts_live;    // thread contexts created and not exited
  uint64_t bytes_in_blocks;  // usable bytes of live blocks (class blocks and large)
  uint64_t large_bytes;      // mapped bytes of live large runs
  uint64_t errors;
  uint64_t os_maps, os_unmaps, os_decommits, bytes_mapped;
};

StatsSnapshot stats_snapshot() noexcept;
// From the library constructor: the exit report's atexit handler and descriptor.
void stats_init_once() noexcept;
// Where the text report goes: the duplicate of stderr taken at start while it still
// names the same file, else fd 2.
int stats_fd() noexcept;
void stats_print(int fd) noexcept;
bool stats_write_json(const char* path) noexcept;

}  // namespace hak
