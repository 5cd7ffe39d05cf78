// Counts as the CLI prints them.
#pragma once

#include <cstdint>
#include <string>

namespace muonlab::cli {

// A count with its thousands apart: "32,768", "-1,024".
inline std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n);
  for (auto at = static_cast<int64_t>(digits.size()) - 3; at > (n < 0 ? 1 : 0); at -= 3) digits.insert(at, ",");
  return digits;
}

}  // namespace muonlab::cli
