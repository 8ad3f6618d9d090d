// C7 ULTRA: headerless 1024-byte blocks on dedicated segments (issue 3). Placeholder box.
#pragma once

namespace hak {
struct UltraBox {};
}  // namespace hak
