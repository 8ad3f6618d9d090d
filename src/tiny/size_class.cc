#include "tiny/size_class.h"

namespace hak {
namespace {
constexpr std::array<uint8_t, kTinyMax / 8 + 1> plain_classes() {
  std::array<uint8_t, kTinyMax / 8 + 1> t{};
  for (unsigned q = 0; q <= kTinyMax / 8; ++q) t[q] = kClasses.tiny_by_qword[q];
  return t;
}
}  // namespace

// Constant-initialised to the plain classes (C7 on v3) so that an allocation before
// initialisation is served correctly; initialisation applies HAKMEM_TINY_C7_ULTRA.
constinit std::array<uint8_t, kTinyMax / 8 + 1> g_tiny_slot = plain_classes();

void set_c7_ultra(bool on) noexcept {
  constexpr auto t = plain_classes();
  for (unsigned q = 0; q <= kTinyMax / 8; ++q)
    g_tiny_slot[q] = (on && t[q] == kC7) ? static_cast<uint8_t>(kUltraSlot) : t[q];
}

}  // namespace hak
