// Two builds of one idea (CMakeLists.txt):
//
// libhakmem.a (HAKMEM_CXX_RUNTIME_DLSYM=0) is linked into the program, next to its C++
// runtime: plain `throw std::bad_alloc()`.
//
// libhakmem.so (=1) is preloaded into C programs too, and a DT_NEEDED on libstdc++ would
// load and relocate it in each of them (1.2-1.6 MiB of resident pages before the first
// malloc). So the library has no link-time reference to the C++ runtime: the one path
// that needs it, operator new out of memory, looks it up in the process then. Whoever
// calls operator new is C++ code, so the runtime is loaded by that time, even when it
// came later by dlopen. The exception is built as the compiler builds it (Itanium C++
// ABI): std::bad_alloc is a vtable pointer and nothing else.
#include "front/cxx_runtime.h"

#if HAKMEM_CXX_RUNTIME_DLSYM

#include <dlfcn.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>

namespace hak {
namespace {

// The runtime may be out of the global scope: a C program that dlopens C++ code with
// RTLD_LOCAL brings libstdc++ in as that code's dependency only. RTLD_NOLOAD finds it
// there without ever loading anything.
void* runtime_symbol(const char* name) noexcept {
  if (void* s = dlsym(RTLD_DEFAULT, name)) return s;
  static const char* const kRuntimes[] = {"libstdc++.so.6", "libc++.so.1", "libc++abi.so.1"};
  for (const char* lib : kRuntimes) {
    void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!h) continue;
    void* s = dlsym(h, name);
    dlclose(h);  // it stays loaded: it was before this dlopen
    if (s) return s;
  }
  return nullptr;
}

[[noreturn]] void no_runtime() noexcept {
  static const char msg[] =
      "hakmem: operator new: out of memory, and std::bad_alloc cannot be thrown (no C++ "
      "runtime in the process); aborting\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  abort();
}

// The runtime library's own definition of `name` (not the global one, which for
// operator new is hakmem's).
void* runtime_own_symbol(const char* name) noexcept {
  static const char* const kRuntimes[] = {"libstdc++.so.6", "libc++.so.1"};
  for (const char* lib : kRuntimes) {
    void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!h) continue;
    void* s = dlsym(h, name);
    dlclose(h);
    if (s) return s;
  }
  return nullptr;
}

}  // namespace

void* cxx_new_nothrow_retry(size_t n, size_t align) noexcept {
  if (!cxx_new_handler()) return nullptr;
  // The runtime's nothrow operator new is `try { return ::operator new(n); } catch (...)
  // { return nullptr; }`, and that ::operator new is hakmem's (handler loop, then
  // std::bad_alloc): the catch hakmem cannot have without linking the runtime.
  using NothrowNew = void* (*)(size_t, const void*) noexcept;
  using NothrowAlignedNew = void* (*)(size_t, size_t, const void*) noexcept;
  static const char nothrow_tag = 0;  // std::nothrow_t is empty: any address will do
  if (align) {
    if (auto f = reinterpret_cast<NothrowAlignedNew>(
            runtime_own_symbol("_ZnwmSt11align_val_tRKSt9nothrow_t")))
      return f(n, align, &nothrow_tag);
  } else if (auto f = reinterpret_cast<NothrowNew>(runtime_own_symbol("_ZnwmRKSt9nothrow_t"))) {
    return f(n, &nothrow_tag);
  }
  return nullptr;  // no runtime found to catch with: as if the handler had given up
}

NewHandler cxx_new_handler() noexcept {
  using GetNewHandler = NewHandler (*)() noexcept;
  auto get = reinterpret_cast<GetNewHandler>(runtime_symbol("_ZSt15get_new_handlerv"));
  return get ? get() : nullptr;
}

void cxx_throw_bad_alloc() {
  using AllocateException = void* (*)(size_t) noexcept;
  using Throw = void (*)(void*, void*, void (*)(void*));
  auto allocate = reinterpret_cast<AllocateException>(runtime_symbol("__cxa_allocate_exception"));
  auto throw_fn = reinterpret_cast<Throw>(runtime_symbol("__cxa_throw"));
  void* type_info = runtime_symbol("_ZTISt9bad_alloc");
  auto* vtable = static_cast<void**>(runtime_symbol("_ZTVSt9bad_alloc"));
  auto dtor = reinterpret_cast<void (*)(void*)>(runtime_symbol("_ZNSt9bad_allocD1Ev"));
  if (!allocate || !throw_fn || !type_info || !vtable || !dtor) no_runtime();
  void** exception = static_cast<void**>(allocate(sizeof(void*)));
  // The vtable's address point follows its offset-to-top and typeinfo entries.
  *exception = vtable + 2;
  throw_fn(exception, type_info, dtor);
  abort();  // __cxa_throw does not return
}

}  // namespace hak

#else  // libhakmem.a

#include <new>

namespace hak {

NewHandler cxx_new_handler() noexcept {
  return std::get_new_handler();
}

void cxx_throw_bad_alloc() {
  throw std::bad_alloc();
}

void* cxx_new_nothrow_retry(std::size_t n, std::size_t align) noexcept {
  if (!std::get_new_handler()) return nullptr;
  try {
    return align ? ::operator new (n, std::align_val_t{align}) : ::operator new(n);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace hak

#endif
