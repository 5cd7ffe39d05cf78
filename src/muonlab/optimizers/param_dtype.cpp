#include "muonlab/optimizers/param_dtype.h"

#include <c10/util/Exception.h>

#include "muonlab/core/errors.h"

namespace muonlab::optim {

namespace {

// PyTorch's names (torch.int64, torch.complex64), which most users know.
std::string python_dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kInt16: return "int16";
    case torch::kInt8: return "int8";
    case torch::kUInt8: return "uint8";
    case torch::kBool: return "bool";
    case torch::kComplexHalf: return "complex32";
    case torch::kComplexFloat: return "complex64";
    case torch::kComplexDouble: return "complex128";
    default: return c10::toString(dtype);
  }
}

}  // namespace

bool cpu_has_float16_arithmetic() {
  static const bool available = [] {
    try {
      const auto one = torch::ones({2}, torch::kHalf);
      (void)torch::lerp(one, one, 0.5);
      (void)torch::addcmul(one, one, one);
      (void)one.sqrt();
      return true;
    } catch (const c10::Error&) {
      return false;
    }
  }();
  return available;
}

void check_param_dtype(const torch::Tensor& param, const std::string& name, const std::string& optimizer) {
  const auto dtype = param.scalar_type();
  if (c10::isComplexType(dtype)) {
    fail("parameter '{}' is {}: {} steps real tensors; view a complex one as pairs of reals "
         "(torch.view_as_real) and step that",
         name, python_dtype_name(dtype), optimizer);
  }
  if (!c10::isFloatingType(dtype)) {
    fail("parameter '{}' is {}: {} steps floating-point tensors (float32, bfloat16, float16, float64)", name,
         python_dtype_name(dtype), optimizer);
  }
  if (dtype == torch::kHalf && param.device().is_cpu() && !cpu_has_float16_arithmetic()) {
    fail("parameter '{}' is float16 on the CPU, where this LibTorch has no float16 kernels for {}'s step; keep it "
         "in float32 or bfloat16 on the CPU (float16 steps on the GPU)",
         name, optimizer);
  }
}

}  // namespace muonlab::optim
