// What the benchmarks share in printing and checking their numbers.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "muonlab/core/errors.h"

namespace muonlab::bench {

inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// "124.4M", "20.5K": presets range from thousands of parameters to hundreds of millions.
inline std::string format_count(int64_t count) {
  if (count >= 1'000'000) return fmt::format("{:.1f}M", count / 1e6);
  if (count >= 1'000) return fmt::format("{:.1f}K", count / 1e3);
  return std::to_string(count);
}

// Option checks that name the option and the value.
inline void check_positive(const char* option, double value) {
  if (value <= 0) fail("{} {}: expected a positive number", option, value);
}

inline void check_non_negative(const char* option, double value) {
  if (value < 0) fail("{} {}: expected zero or a positive number", option, value);
}

}  // namespace muonlab::bench
