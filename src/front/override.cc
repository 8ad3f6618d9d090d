// The standard names, for LD_PRELOAD (libhakmem.so) and static linking (libhakmem.a).
// malloc and free carry the fast paths themselves (no call into hak_malloc / hak_free).
#include <stddef.h>

#include "front/hot.h"
#include "hakmem/hakmem.h"

#define HAK_EXPORT extern "C" __attribute__((visibility("default")))

HAK_EXPORT void* malloc(size_t size) {
  return hak::malloc_fast(size);
}
HAK_EXPORT void free(void* p) {
  hak::free_fast(p, "free");
}
HAK_EXPORT void cfree(void* p) {
  hak::free_fast(p, "free");
}
HAK_EXPORT void* calloc(size_t n, size_t size) {
  return hak_calloc(n, size);
}
HAK_EXPORT void* realloc(void* p, size_t size) {
  return hak_realloc(p, size);
}
HAK_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  return hak_reallocarray(p, n, size);
}
HAK_EXPORT int posix_memalign(void** out, size_t align, size_t size) {
  return hak_posix_memalign(out, align, size);
}
HAK_EXPORT void* aligned_alloc(size_t align, size_t size) {
  return hak_aligned_alloc(align, size);
}
HAK_EXPORT void* memalign(size_t align, size_t size) {
  return hak_memalign(align, size);
}
HAK_EXPORT void* valloc(size_t size) {
  return hak_valloc(size);
}
HAK_EXPORT void* pvalloc(size_t size) {
  return hak_pvalloc(size);
}
HAK_EXPORT size_t malloc_usable_size(void* p) {
  return hak_malloc_usable_size(p);
}
