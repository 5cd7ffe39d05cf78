// muonlab's error type. Messages name the file, field, parameter or value at
// fault and say what was expected, so a user can act without a debugger.
// Free of LibTorch, so the data layer's parsers also build alone (fuzzing).
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace muonlab {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace muonlab
