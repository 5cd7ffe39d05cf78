#include "muonlab/core/shape_string.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace muonlab {

std::string shape_string(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes.begin(), sizes.end(), ", "));
}

}  // namespace muonlab
