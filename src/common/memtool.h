// Memory-checker awareness: AddressSanitizer (automatic in ASan builds) and Valgrind
// memcheck (CMake option HAKMEM_VALGRIND). hakmem tells the checker which of its bytes
// are live blocks, so ASan reports use-after-free and overflow into a neighbouring free
// block, and memcheck treats hak_malloc blocks like malloc blocks. In other builds these
// are no-ops.
//
//   HAK_MEM_ALLOCATED(p, n)  a block is handed out
//   HAK_MEM_FREED(p, n)      a block is freed (before its link is written)
//   HAK_MEM_NOACCESS(p, n)   an area holds no block: never carved, or a cached run
//   HAK_MEM_USABLE(p, n)     an area is hakmem's own again (headers, or about to unmap)
//   HAK_MEM_ZEROED(p, n)     a live block known to be zero (fresh pages, for calloc)
//   HAK_MEM_KEPT(p, n)       bytes of a new live block that hold the program's data (a
//                            large realloc moved the old block's pages there)
//   HAK_MEM_LARGE_ALLOCATED / HAK_MEM_LARGE_FREED: the same for large blocks, which may be
//   huge: ASan leaves their shadow alone (a fresh mapping is clean; only cached runs, at
//   most 32 MiB, are ever poisoned), memcheck is told as for any block.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define HAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAK_ASAN 1
#endif
#endif

#if defined(HAK_ASAN)
#include <sanitizer/asan_interface.h>
#define HAK_MEM_ALLOCATED(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_MEM_FREED(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HAK_MEM_NOACCESS(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HAK_MEM_USABLE(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_MEM_ZEROED(p, n) ((void)(p), (void)(n))
#define HAK_MEM_KEPT(p, n) ((void)(p), (void)(n))
#define HAK_MEM_LARGE_ALLOCATED(p, n) ((void)(p), (void)(n))
#define HAK_MEM_LARGE_FREED(p, n) ((void)(p), (void)(n))
#define HAK_LINK_OPEN(b) ((void)0)
#define HAK_LINK_CLOSE(b) ((void)0)
#define HAK_NO_ASAN __attribute__((no_sanitize("address")))
#elif defined(HAKMEM_VALGRIND)
#include <valgrind/memcheck.h>
#define HAK_MEM_ALLOCATED(p, n) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, 0)
#define HAK_MEM_FREED(p, n)          \
  do {                               \
    (void)(n);                       \
    VALGRIND_FREELIKE_BLOCK((p), 0); \
  } while (0)
#define HAK_MEM_NOACCESS(p, n) (void)VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define HAK_MEM_USABLE(p, n) (void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
// A free block's link is hakmem's: readable while hakmem uses it, then no access again.
#define HAK_MEM_ZEROED(p, n) (void)VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define HAK_MEM_KEPT(p, n) (void)VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define HAK_MEM_LARGE_ALLOCATED(p, n) HAK_MEM_ALLOCATED(p, n)
#define HAK_MEM_LARGE_FREED(p, n) HAK_MEM_FREED(p, n)
#define HAK_LINK_OPEN(b) (void)VALGRIND_MAKE_MEM_DEFINED((b), sizeof(void*))
#define HAK_LINK_CLOSE(b) (void)VALGRIND_MAKE_MEM_NOACCESS((b), sizeof(void*))
#define HAK_NO_ASAN
#else
#define HAK_MEM_ALLOCATED(p, n) ((void)(p), (void)(n))
#define HAK_MEM_FREED(p, n) ((void)(p), (void)(n))
#define HAK_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define HAK_MEM_USABLE(p, n) ((void)(p), (void)(n))
#define HAK_MEM_ZEROED(p, n) ((void)(p), (void)(n))
#define HAK_MEM_KEPT(p, n) ((void)(p), (void)(n))
#define HAK_MEM_LARGE_ALLOCATED(p, n) ((void)(p), (void)(n))
#define HAK_MEM_LARGE_FREED(p, n) ((void)(p), (void)(n))
#define HAK_LINK_OPEN(b) ((void)0)
#define HAK_LINK_CLOSE(b) ((void)0)
#define HAK_NO_ASAN
#endif
