// Helpers shared by the gtest suites.
#pragma once

#include <hakmem/hakmem.h>
#include <hakmem/inspect.h>
#include <valgrind/valgrind.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hk = hakmem::inspect;

// Sanitizer builds: the program's malloc is the sanitizer's (not glibc's) and shadow
// memory counts in RSS, so RSS figures and glibc comparisons do not apply there. TSan
// also cannot start threads in the child of a multi-threaded fork (its limitation).
#if defined(__has_feature)
#define HAK_TEST_HAS_FEATURE(x) __has_feature(x)
#else
#define HAK_TEST_HAS_FEATURE(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || HAK_TEST_HAS_FEATURE(thread_sanitizer)
inline constexpr bool kThreadSanitized = true;
#else
inline constexpr bool kThreadSanitized = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || HAK_TEST_HAS_FEATURE(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = kThreadSanitized;
#endif

// Under Valgrind the program's malloc is Valgrind's too.
inline bool foreign_malloc() {
  return kSanitized || RUNNING_ON_VALGRIND;
}

// Regions of a kind (and class, unless cls < 0) that are mapped now.
inline size_t count_regions(hk::Kind kind, int cls = -1) {
  size_t n = 0;
  for (const auto& r : hk::regions())
    if (r.kind == kind && (cls < 0 || r.cls == cls)) ++n;
  return n;
}

inline uint64_t active_blocks(hk::Kind kind, int cls = -1) {
  uint64_t n = 0;
  for (const auto& r : hk::regions())
    if (r.kind == kind && (cls < 0 || r.cls == cls)) n += r.active;
  return n;
}

// Resident set size of this process in bytes (from /proc/self/statm).
inline size_t rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, res = 0;
  int n = fscanf(f, "%lu %lu", &size, &res);
  fclose(f);
  return n == 2 ? res * 4096 : 0;
}

// The ULTRA mode the suites run in: HAKMEM_TINY_C7_ULTRA (default on). ctest runs the
// suites once per mode.
inline bool ultra_default() {
  const char* v = getenv("HAKMEM_TINY_C7_ULTRA");
  return !(v && v[0] == '0');
}

// A known state: given settings, nothing kept from earlier tests.
inline void fresh_settings(unsigned warm, bool ultra = ultra_default(), bool report = false) {
  hk::Settings s;
  s.warm_regions = 0;  // first drop whatever earlier tests left in the pools
  hk::set_settings(s);
  hk::trim();
  s.warm_regions = warm;
  s.c7_ultra = ultra;
  s.report_errors = report;
  s.quiet = report;
  hk::set_settings(s);
  hk::trim();
}

inline void fill(void* p, size_t n, uint8_t seed) {
  memset(p, seed, n);
}
inline bool check(const void* p, size_t n, uint8_t seed) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i] != seed) return false;
  return true;
}
