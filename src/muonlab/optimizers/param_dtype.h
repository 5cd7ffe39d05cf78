// Which parameter dtypes the optimizers step. Muon orthogonalizes real
// matrices and AdamW's second moment is a real square, so integer, bool and
// complex parameters are refused (a complex one would be cast to real and
// lose its imaginary part without a word); so is float16 on a CPU where this
// LibTorch has no float16 kernels for the step (1.13 has none for lerp and
// addcmul), with what to use instead of LibTorch's "not implemented for 'Half'".
#pragma once

#include <torch/torch.h>

#include <string>

namespace muonlab::optim {

// Fails naming `name`, its dtype and what `optimizer` ("Muon", "AdamW")
// takes instead.
void check_param_dtype(const torch::Tensor& param, const std::string& name, const std::string& optimizer);

// Whether this LibTorch's CPU kernels do the float16 arithmetic the steps
// use (lerp, addcmul, sqrt); tried once.
bool cpu_has_float16_arithmetic();

}  // namespace muonlab::optim
