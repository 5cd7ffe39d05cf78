// The short dtype names muonlab prints and parses: "bf16", "fp32", "fp64".
#pragma once

#include <torch/torch.h>

#include <string>

namespace muonlab {

inline std::string short_dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    case torch::kFloat64: return "fp64";
    default: return "fp32";
  }
}

}  // namespace muonlab
