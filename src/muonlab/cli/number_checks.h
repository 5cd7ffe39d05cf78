// Checks for numeric options, with messages that say what was expected.
// (CLI11's PositiveNumber says "Value 0 not in range 0.000000 to
// 1797693134862315708...", the largest double printed in full.)
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <string>

namespace muonlab::cli {

namespace number_check_detail {

enum class Kind { kNumber, kCount };

inline CLI::Validator at_least(Kind kind, bool zero_allowed, const std::string& expectation) {
  return CLI::Validator(
      [kind, zero_allowed, expectation](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        const bool parsed = end != text.c_str() && *end == '\0' && std::isfinite(value);
        const bool whole = kind == Kind::kNumber || (parsed && value == std::floor(value));
        if (parsed && whole && (value > 0 || (zero_allowed && value == 0))) return "";
        return "'" + text + "': expected " + expectation;
      },
      zero_allowed ? "NONNEGATIVE" : "POSITIVE");
}

}  // namespace number_check_detail

// A number > 0, and >= 0.
inline const CLI::Validator kPositive =
    number_check_detail::at_least(number_check_detail::Kind::kNumber, false, "a number > 0");
inline const CLI::Validator kNonNegative =
    number_check_detail::at_least(number_check_detail::Kind::kNumber, true, "a number >= 0");
// A whole number > 0 (1, 2, ...), and >= 0.
inline const CLI::Validator kPositiveCount =
    number_check_detail::at_least(number_check_detail::Kind::kCount, false, "a whole number >= 1");
inline const CLI::Validator kNonNegativeCount =
    number_check_detail::at_least(number_check_detail::Kind::kCount, true, "a whole number >= 0");

}  // namespace muonlab::cli
