// AdamW's step on the CPU in one pass over parameter, gradient and both
// moments, instead of LibTorch's nine elementwise ops (each a pass of its
// own over the state): the step is memory bound, and one pass moves 28 bytes
// a parameter where the ops move about three times that.
//
//   p = (1 - lr wd) p
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g g
//   p = p - lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)     c_i: bias corrections
//
// Each operation rounds to fp32 as the op-by-op form does, with the
// multiply and the add of a term rounded separately (LibTorch's vectorized
// add may fuse them), so the two agree to within an ulp or two
// (tests/optimizers/fused_adamw_cpu_test.cpp).
#pragma once

#include <torch/torch.h>

namespace muonlab::optim {

// Whether the fused pass takes these tensors: all on the CPU, fp32,
// contiguous, dense, the same number of elements.
bool fused_adamw_cpu_applies(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& exp_avg,
                             const torch::Tensor& exp_avg_sq);

struct FusedAdamWCoefficients {
  double decay;        // 1 - lr wd
  double beta1, beta2;
  double step_size;    // lr / c1
  double sqrt_c2;      // sqrt(c2)
  double eps;
};

// One AdamW step of `param` in place (its moments advanced in place);
// only where fused_adamw_cpu_applies.
void fused_adamw_cpu_step(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                          torch::Tensor& exp_avg_sq, const FusedAdamWCoefficients& k);

}  // namespace muonlab::optim
