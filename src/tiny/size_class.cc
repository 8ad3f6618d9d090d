#include "tiny/size_class.h"

namespace hak {
namespace {
// Indexed by the size itself: the malloc fast path loads its slot without rounding the
// size first (two instructions; the table is 1 KiB, 17 cache lines).
constexpr std::array<uint8_t, kTinyMax + 1> plain_classes() {
  std::array<uint8_t, kTinyMax + 1> t{};
  for (unsigned n = 0; n <= kTinyMax; ++n) t[n] = kClasses.tiny_by_qword[(n + 7) / 8];
  return t;
}
}  // namespace

// Constant-initialised to the plain classes (C7 on v3) so that an allocation before
// initialisation is served correctly; initialisation applies HAKMEM_TINY_C7_ULTRA.
constinit std::array<uint8_t, kTinyMax + 1> g_tiny_slot = plain_classes();

void set_c7_ultra(bool on) noexcept {
  constexpr auto t = plain_classes();
  for (unsigned n = 0; n <= kTinyMax; ++n)
    g_tiny_slot[n] = (on && t[n] == kC7) ? static_cast<uint8_t>(kUltraSlot) : t[n];
}

}  // namespace hak
