// Linked to hakmem::hakmem_core: the hak_* API works, the verification interface sees
// its blocks, and the program's own malloc is NOT hakmem's.
#include <hakmem/hakmem.h>
#include <hakmem/inspect.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace inspect = hakmem::inspect;

static int failures = 0;
#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "core_user: CHECK failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                                       \
    }                                                                                   \
  } while (0)

int main() {
  std::vector<void*> v;
  for (size_t s : {1u, 16u, 48u, 100u, 1000u, 1024u, 3000u, 70000u, 1u << 20, 8u << 20}) {
    auto* p = static_cast<unsigned char*>(hak_malloc(s));
    CHECK(p != nullptr);
    if (!p) continue;
    CHECK(reinterpret_cast<uintptr_t>(p) % (s >= 16 ? 16 : 8) == 0);
    CHECK(hak_malloc_usable_size(p) >= s);
    std::memset(p, static_cast<int>(s & 0xff), s);
    CHECK(inspect::route_of(p) != inspect::Route::kInvalid);
    inspect::RegionInfo ri;
    CHECK(inspect::region_of(p, &ri) && ri.base <= reinterpret_cast<uintptr_t>(p));
    v.push_back(p);
  }
  auto* c = static_cast<unsigned char*>(hak_calloc(1000, 10));
  CHECK(c != nullptr);
  for (int i = 0; c && i < 10000; ++i) CHECK(c[i] == 0);
  c = static_cast<unsigned char*>(hak_realloc(c, 50000));
  CHECK(c != nullptr && c[9999] == 0);
  hak_free(c);
  void* al = nullptr;
  CHECK(hak_posix_memalign(&al, 4096, 100) == 0 && reinterpret_cast<uintptr_t>(al) % 4096 == 0);
  hak_free(al);
  errno = 0;
  CHECK(hak_malloc(SIZE_MAX) == nullptr && errno == ENOMEM);
  for (void* p : v) hak_free(p);

  // The program's malloc is the system's: hakmem does not know its pointers.
  void* sys = std::malloc(64);
  CHECK(sys != nullptr);
  CHECK(inspect::route_of(sys) == inspect::Route::kInvalid);
  std::free(sys);

  CHECK(hak_error_count() == 0);
  CHECK(inspect::os_counts().maps > 0);
  if (failures) return 1;
  std::puts("core_user: ok");
  return 0;
}
