// Shared helpers for the benchmark workloads. The workloads call plain malloc/free so that
// LD_PRELOAD picks the allocator; nothing here links hakmem. Measurements avoid the heap
// (raw open/read on stack buffers) so they do not disturb the allocator under test.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

// xorshift64*: fast, fixed seed, same sequence under every allocator.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [0, n) without a division (Lemire's multiply-shift on the high 32 bits).
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }
};

inline double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Reads a small /proc file into buf without allocating. Returns bytes read (0 on failure).
inline size_t read_proc(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t used = 0;
  while (used + 1 < cap) {
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  buf[used] = '\0';
  return used;
}

// Current resident set in KiB (/proc/self/statm, second field, in pages).
inline long rss_kb() {
  char buf[256];
  if (!read_proc("/proc/self/statm", buf, sizeof buf)) return -1;
  char* p = buf;
  strtol(p, &p, 10);
  long pages = strtol(p, nullptr, 10);
  return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

// Peak resident set in KiB: VmHWM (getrusage's ru_maxrss if /proc is unreadable), but at
// least `sampled`, an RSS the caller measured itself: the kernel updates the high-water
// mark from per-thread counters that lag, so VmHWM can read below a current RSS.
inline long peak_rss_kb(long sampled = 0) {
  long hwm = -1;
  char buf[4096];
  if (read_proc("/proc/self/status", buf, sizeof buf)) {
    if (const char* p = strstr(buf, "VmHWM:")) hwm = strtol(p + 6, nullptr, 10);
  }
  if (hwm < 0) {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    hwm = ru.ru_maxrss;
  }
  return hwm > sampled ? hwm : sampled;
}

// Minimal "--key value" parsing: returns true and sets *out when argv[i] is `key`.
inline bool arg_u64(int argc, char** argv, int& i, const char* key, uint64_t* out) {
  if (strcmp(argv[i], key) != 0) return false;
  if (i + 1 >= argc) {
    fprintf(stderr, "missing value for %s\n", key);
    exit(2);
  }
  char* end = nullptr;
  *out = strtoull(argv[++i], &end, 0);
  if (!end || *end) {
    fprintf(stderr, "bad value for %s: %s\n", key, argv[i]);
    exit(2);
  }
  return true;
}

// "--key" alone: returns true and sets *out when argv[i] is `key`.
inline bool arg_flag(char** argv, int i, const char* key, bool* out) {
  if (strcmp(argv[i], key) != 0) return false;
  *out = true;
  return true;
}

// "--key value" for a string (the pointer into argv is kept, no copy).
inline bool arg_str(int argc, char** argv, int& i, const char* key, const char** out) {
  if (strcmp(argv[i], key) != 0) return false;
  if (i + 1 >= argc) {
    fprintf(stderr, "missing value for %s\n", key);
    exit(2);
  }
  *out = argv[++i];
  return true;
}

// Stand-ins for malloc/free in the --dry runs (ci/bench.sh --instructions): the same loop
// with the allocator left out, so its own instructions (RNG, slots, touching the block) can be
// subtracted. The empty asm makes the size and pointer opaque: the compiler can neither drop
// the work that feeds them nor assume anything about the block returned.
// A program that goes on after freeing: sleeps `ms`, then one malloc and free of each power
// of two from 16 B to 128 KiB (allocators that give pages back after a delay do it from
// such calls, having no thread of their own).
inline void idle_then_work(uint64_t ms) {
  usleep(static_cast<useconds_t>(ms * 1000));
  for (size_t n = 16; n <= (size_t{128} << 10); n *= 2) {
    void* p = malloc(n);
    if (p) static_cast<char*>(p)[0] = 1;
    free(p);
  }
}

inline char dry_block[64];
inline void* dry_malloc(size_t size) {
  void* p = dry_block;
  asm volatile("" : "+r"(p) : "r"(size));
  return p;
}
inline void dry_free(void* p) {
  asm volatile("" : : "r"(p));
}

}  // namespace bench
