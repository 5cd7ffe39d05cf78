// Tensor shapes as text for error messages: "[768, 2304]".
#pragma once

#include <c10/util/ArrayRef.h>

#include <string>

namespace muonlab {

std::string shape_string(c10::IntArrayRef sizes);

}  // namespace muonlab
