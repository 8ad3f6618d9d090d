#include "tiny/size_class.h"

namespace hak {
namespace {
// Indexed by the size itself: a lookup of the slot without rounding the size first.
constexpr std::array<uint8_t, kTinyMax + 1> plain_classes() {
  std::array<uint8_t, kTinyMax + 1> t{};
  for (unsigned n = 0; n <= kTinyMax; ++n) t[n] = kClasses.tiny_by_qword[(n + 7) / 8];
  return t;
}
}  // namespace

// Constant-initialised to the plain classes (C7 on v3) so that an allocation before
// initialisation is served correctly; initialisation applies HAKMEM_TINY_C7_ULTRA.
constinit std::array<uint8_t, kTinyMax + 1> g_tiny_slot = plain_classes();

// What the malloc fast path loads: the box's byte offset itself (two instructions; the
// scaling of a slot index took two more; the table is 2 KiB, 33 cache lines).
constexpr std::array<uint16_t, kTinyMax + 1> plain_box_offsets() {
  std::array<uint16_t, kTinyMax + 1> t{};
  for (unsigned n = 0; n <= kTinyMax; ++n)
    t[n] = static_cast<uint16_t>(kClasses.tiny_by_qword[(n + 7) / 8] * kBoxBytes);
  return t;
}
constinit std::array<uint16_t, kTinyMax + 1> g_tiny_box_offset = plain_box_offsets();

void set_c7_ultra(bool on) noexcept {
  constexpr auto t = plain_classes();
  for (unsigned n = 0; n <= kTinyMax; ++n) {
    g_tiny_slot[n] = (on && t[n] == kC7) ? static_cast<uint8_t>(kUltraSlot) : t[n];
    g_tiny_box_offset[n] = static_cast<uint16_t>(g_tiny_slot[n] * kBoxBytes);
  }
}

}  // namespace hak
