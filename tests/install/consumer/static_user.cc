// Linked to hakmem::hakmem_static: plain malloc/free and operator new/delete are served
// by hakmem, which the verification interface and the hak_* API both confirm.
#include <hakmem/hakmem.h>
#include <hakmem/inspect.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>

namespace inspect = hakmem::inspect;

static int failures = 0;
#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "static_user: CHECK failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                                         \
    }                                                                                     \
  } while (0)

// Opaque to the optimizer, so malloc/free pairs are not elided.
template <typename T>
T* launder_ptr(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}

int main() {
  for (size_t s : {8u, 100u, 1000u, 5000u, 300000u}) {
    void* p = launder_ptr(std::malloc(s));
    CHECK(p != nullptr);
    std::memset(p, 0x5a, s);
    // A pointer from plain malloc lies in a hakmem region...
    CHECK(inspect::route_of(p) != inspect::Route::kInvalid);
    inspect::RegionInfo ri;
    CHECK(inspect::region_of(p, &ri));
    // ...and the hak_* API accepts it (a foreign pointer would be an error).
    CHECK(hak_malloc_usable_size(p) >= s);
    std::free(p);
  }
  // Mixed APIs: free() takes hak_malloc's blocks and hak_free takes malloc's.
  void* a = launder_ptr(hak_malloc(200));
  std::free(a);
  void* b = launder_ptr(std::malloc(200));
  hak_free(b);
  // operator new/delete too.
  auto* arr = launder_ptr(new int[1000]);
  CHECK(inspect::route_of(arr) != inspect::Route::kInvalid);
  delete[] arr;
  std::map<std::string, std::unique_ptr<std::string>> m;
  for (int i = 0; i < 2000; ++i) m[std::to_string(i)] = std::make_unique<std::string>(i % 300, 'x');
  CHECK(inspect::route_of(m.at("1999").get()) != inspect::Route::kInvalid);
  m.clear();

  // Out of memory in operator new: std::bad_alloc (libhakmem.a throws it itself).
  volatile size_t huge = SIZE_MAX / 4;
  bool threw = false;
  try {
    ::operator delete(::operator new(huge));
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw);

  CHECK(hak_error_count() == 0);
  CHECK(inspect::os_counts().maps > 0);
  if (failures) return 1;
  std::puts("static_user: ok");
  return 0;
}
