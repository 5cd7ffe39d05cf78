// A flag that turns a default-on feature off (--no-plots): CLI11's "!--no-x"
// syntax prints "--no-x{false}" in the help; this prints just the flag.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace muonlab::cli {

inline CLI::Option* add_negated_flag(CLI::App& command, const std::string& name, bool& feature,
                                     const std::string& help) {
  return command.add_flag_callback(name, [&feature] { feature = false; }, help);
}

}  // namespace muonlab::cli
