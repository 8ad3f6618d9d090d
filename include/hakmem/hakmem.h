/* hakmem: a memory allocator that gives memory back to the OS. C API.
 *
 * The hak_* functions behave like their malloc-family namesakes in glibc (same results,
 * same errno values). They are always available, whether or not the library also
 * replaces malloc (libhakmem.so and libhakmem.a do; libhakmem_core.a does not). */
#ifndef HAKMEM_HAKMEM_H
#define HAKMEM_HAKMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1

#if defined(__GNUC__)
#define HAKMEM_API __attribute__((visibility("default")))
#else
#define HAKMEM_API
#endif

HAKMEM_API void* hak_malloc(size_t size);
HAKMEM_API void hak_free(void* ptr);
HAKMEM_API void* hak_calloc(size_t n, size_t size);
HAKMEM_API void* hak_realloc(void* ptr, size_t size);
HAKMEM_API void* hak_reallocarray(void* ptr, size_t n, size_t size);
HAKMEM_API int hak_posix_memalign(void** out, size_t alignment, size_t size);
HAKMEM_API void* hak_aligned_alloc(size_t alignment, size_t size);
HAKMEM_API void* hak_memalign(size_t alignment, size_t size);
HAKMEM_API void* hak_valloc(size_t size);
HAKMEM_API void* hak_pvalloc(size_t size);
HAKMEM_API size_t hak_malloc_usable_size(void* ptr);
/* C23: free of a block malloc'd with `size` bytes (aligned_alloc'd with `alignment`). */
HAKMEM_API void hak_free_sized(void* ptr, size_t size);
HAKMEM_API void hak_free_aligned_sized(void* ptr, size_t alignment, size_t size);
/* Gives back the pages of the large-run cache and of the calling thread's empty (warm)
 * regions; 1 if memory was released, else 0 (glibc's malloc_trim; `pad` is unused:
 * hakmem keeps no heap top). */
HAKMEM_API int hak_malloc_trim(size_t pad);

/* Collection point for the calling thread: takes back blocks other threads freed into
 * its regions and releases regions that became empty; cached large runs give their
 * pages back. */
HAKMEM_API void hak_collect(void);
/* Writes the statistics report (as HAKMEM_STATS=1 does at exit) to the file descriptor. */
HAKMEM_API void hak_stats_print(int fd);
/* Number of bad-pointer errors reported so far (HAKMEM_ON_ERROR=report keeps going). */
HAKMEM_API unsigned long long hak_error_count(void);

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_HAKMEM_H */
