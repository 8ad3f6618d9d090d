// What operator new needs from the C++ runtime: the new-handler and std::bad_alloc.
#pragma once

#include <cstddef>

namespace hak {

using NewHandler = void (*)();

// std::get_new_handler(), or nullptr when there is no C++ runtime in the process.
NewHandler cxx_new_handler() noexcept;
// throw std::bad_alloc().
[[noreturn]] void cxx_throw_bad_alloc();
// The nothrow operator new after a first attempt failed: the new-handler protocol (call
// the handler, retry) and nullptr once the handler is gone or throws std::bad_alloc.
// align: 0, or the alignment of the aligned form.
void* cxx_new_nothrow_retry(std::size_t n, std::size_t align) noexcept;

}  // namespace hak
