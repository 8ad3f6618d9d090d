// C7 ULTRA (seed 002): 1024-byte blocks on dedicated 2 MiB segments (region kind ULTRA)
// whose 64 KiB slabs are the ULTRA pages. The thread's box is the free list of its current
// segment, held in TLS: malloc pops it; free finds the page by mask (for its count) and
// pushes with no header check (hardened builds check like v3) — on the box when the block
// is in the box's segment (LIFO: the block reused next is the one just freed, still in
// cache), else on its page's list. Segments share the SuperSlab engine for carving,
// remote frees, release, the warm reserve, abandonment and adoption.
#pragma once

#include "tiny/superslab.h"

namespace hak {

struct UltraBox {
  FreeBlock* free = nullptr;  // free blocks of `seg` (any page), ready to hand out
  SuperSlab* seg = nullptr;
};

// Blocks carved into the box at once from a fresh page (the rest stay uncarved).
inline constexpr uint32_t kUltraCarveBatch = 64;

struct ThreadCache;
// Refills the box and returns a live block, or nullptr (errno = ENOMEM).
void* ultra_malloc_slow() noexcept;
void* ultra_refill_slow() noexcept;
// Gives the box's blocks back to their page (thread exit, release of the segment).
void ultra_box_flush(UltraBox& box) noexcept;

}  // namespace hak
