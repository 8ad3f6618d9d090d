// operator new/delete on hakmem, for static linking (and LD_PRELOAD).
#include <cstddef>
#include <new>

#include "front/cxx_runtime.h"
#include "hakmem/hakmem.h"

#define HAK_EXPORT __attribute__((visibility("default")))

namespace {

void* new_or_throw(std::size_t n) {
  for (;;) {
    if (void* p = hak_malloc(n)) return p;
    hak::NewHandler h = hak::cxx_new_handler();
    if (!h) hak::cxx_throw_bad_alloc();
    h();
  }
}

void* new_aligned_or_throw(std::size_t n, std::align_val_t a) {
  for (;;) {
    if (void* p = hak_memalign(static_cast<std::size_t>(a), n ? n : 1)) return p;
    hak::NewHandler h = hak::cxx_new_handler();
    if (!h) hak::cxx_throw_bad_alloc();
    h();
  }
}

}  // namespace

HAK_EXPORT void* operator new(std::size_t n) {
  return new_or_throw(n);
}
HAK_EXPORT void* operator new[](std::size_t n) {
  return new_or_throw(n);
}
// The nothrow forms run the new-handler protocol too (the standard: as if the throwing
// form were called and std::bad_alloc caught).
HAK_EXPORT void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (void* p = hak_malloc(n)) return p;
  return hak::cxx_new_nothrow_retry(n, 0);
}
HAK_EXPORT void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  if (void* p = hak_malloc(n)) return p;
  return hak::cxx_new_nothrow_retry(n, 0);
}
HAK_EXPORT void* operator new(std::size_t n, std::align_val_t a) {
  return new_aligned_or_throw(n, a);
}
HAK_EXPORT void* operator new[](std::size_t n, std::align_val_t a) {
  return new_aligned_or_throw(n, a);
}
HAK_EXPORT void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  if (void* p = hak_memalign(static_cast<std::size_t>(a), n ? n : 1)) return p;
  return hak::cxx_new_nothrow_retry(n, static_cast<std::size_t>(a));
}
HAK_EXPORT void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  if (void* p = hak_memalign(static_cast<std::size_t>(a), n ? n : 1)) return p;
  return hak::cxx_new_nothrow_retry(n, static_cast<std::size_t>(a));
}
HAK_EXPORT void operator delete(void* p) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete[](void* p) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete(void* p, std::size_t) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete[](void* p, std::size_t) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete(void* p, std::align_val_t) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete[](void* p, std::align_val_t) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hak_free(p);
}
HAK_EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  hak_free(p);
}
