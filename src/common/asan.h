// AddressSanitizer awareness. In ASan builds hakmem keeps free and never-carved blocks
// poisoned and unpoisons a block when it hands it out, so ASan reports use-after-free and
// overflow into a neighbouring free block for memory hak_malloc serves. In other builds
// these are no-ops.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define HAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAK_ASAN 1
#endif
#endif

#ifdef HAK_ASAN
#include <sanitizer/asan_interface.h>
#define HAK_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HAK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HAK_NO_ASAN __attribute__((no_sanitize("address")))
#else
#define HAK_POISON(p, n) ((void)(p), (void)(n))
#define HAK_UNPOISON(p, n) ((void)(p), (void)(n))
#define HAK_NO_ASAN
#endif
