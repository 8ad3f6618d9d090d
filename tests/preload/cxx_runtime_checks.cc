// libhakmem.so's operator new, as C++ code sees it. The library has no link-time tie to
// the C++ runtime (src/front/cxx_runtime.cc), so these check what the runtime must
// still get: std::bad_alloc with a working vtable, the new-handler protocol, exceptions
// unwinding through hakmem's frames. Built into a module that a C program dlopens (the
// C++ runtime arrives after hakmem) and into a C++ program (it is there from the start).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int failures = 0;
#define CHECK(cond)                                                                              \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "cxx_runtime_checks: CHECK failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                                                \
    }                                                                                            \
  } while (0)

// More than any machine can map; hakmem fails it at once.
constexpr std::size_t kHuge = SIZE_MAX / 4;

// Opaque to the optimizer, so new-expressions are not folded away.
template <typename T>
T launder_value(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

bool from_hakmem(const void* fn) {
  Dl_info info;
  return dladdr(fn, &info) != 0 && info.dli_fname && std::strstr(info.dli_fname, "libhakmem");
}

template <typename F>
bool throws_bad_alloc(F f) {
  try {
    f();
  } catch (const std::bad_alloc& e) {
    // what() goes through the vtable hakmem put in the exception object.
    if (std::strcmp(e.what(), "std::bad_alloc") == 0) return true;
    std::fprintf(stderr, "cxx_runtime_checks: bad_alloc::what() = \"%s\"\n", e.what());
    return false;
  } catch (...) {
    return false;
  }
  return false;
}

int handler_calls = 0;
void give_up_on_third_call() {
  if (++handler_calls == 3) std::set_new_handler(nullptr);
}
void throw_bad_alloc_from_handler() {
  throw std::bad_alloc();
}
void throw_from_handler() {
  throw std::runtime_error("from the new-handler");
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int hakmem_cxx_runtime_checks() {
  // These operator news are hakmem's, not libstdc++'s.
  void* (*scalar)(std::size_t) = &::operator new;
  void* (*array)(std::size_t) = &::operator new[];
  CHECK(from_hakmem(reinterpret_cast<const void*>(scalar)));
  CHECK(from_hakmem(reinterpret_cast<const void*>(array)));

  // Ordinary use.
  std::vector<std::string> v;
  for (int i = 0; i < 1000; ++i) v.push_back(std::string(static_cast<std::size_t>(i % 97), 'x'));
  CHECK(v[500].size() == 500 % 97);

  CHECK(throws_bad_alloc([] { ::operator delete(::operator new(launder_value(kHuge))); }));
  CHECK(throws_bad_alloc([] {
    // Laundered: a new-expression whose result is unused may be elided altogether.
    char* p = launder_value(new char[launder_value(kHuge)]);
    delete[] p;
  }));
  CHECK(throws_bad_alloc([] {
    ::operator delete (::operator new (launder_value(kHuge), std::align_val_t{64}),
                       std::align_val_t{64});
  }));
  CHECK(::operator new(launder_value(kHuge), std::nothrow) == nullptr);
  CHECK(::operator new[](launder_value(kHuge), std::align_val_t{4096}, std::nothrow) == nullptr);

  // The new-handler runs until it removes itself, then bad_alloc.
  handler_calls = 0;
  std::set_new_handler(give_up_on_third_call);
  CHECK(throws_bad_alloc([] { ::operator delete(::operator new(launder_value(kHuge))); }));
  CHECK(handler_calls == 3);
  CHECK(std::get_new_handler() == nullptr);

  // The nothrow forms run the handler too, and give nullptr once it is gone...
  handler_calls = 0;
  std::set_new_handler(give_up_on_third_call);
  CHECK(::operator new(launder_value(kHuge), std::nothrow) == nullptr);
  CHECK(handler_calls == 3);
  handler_calls = 0;
  std::set_new_handler(give_up_on_third_call);
  CHECK(::operator new[](launder_value(kHuge), std::align_val_t{4096}, std::nothrow) == nullptr);
  CHECK(handler_calls == 3);
  // ... or once it throws std::bad_alloc.
  std::set_new_handler(throw_bad_alloc_from_handler);
  CHECK(::operator new(launder_value(kHuge), std::nothrow) == nullptr);
  std::set_new_handler(nullptr);

  // An exception from the handler unwinds through hakmem's operator new.
  std::set_new_handler(throw_from_handler);
  bool caught = false;
  try {
    ::operator delete(::operator new(launder_value(kHuge)));
  } catch (const std::runtime_error& e) {
    caught = std::strcmp(e.what(), "from the new-handler") == 0;
  }
  std::set_new_handler(nullptr);
  CHECK(caught);

  // Memory still works after all that.
  auto* p = new std::uint64_t[512]();
  CHECK(p[511] == 0);
  delete[] p;
  return failures;
}
