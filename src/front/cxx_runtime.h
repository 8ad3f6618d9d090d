// What operator new needs from the C++ runtime: the new-handler and std::bad_alloc.
#pragma once

namespace hak {

using NewHandler = void (*)();

// std::get_new_handler(), or nullptr when there is no C++ runtime in the process.
NewHandler cxx_new_handler() noexcept;
// throw std::bad_alloc().
[[noreturn]] void cxx_throw_bad_alloc();

}  // namespace hak
