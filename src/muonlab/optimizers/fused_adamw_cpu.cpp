#include "muonlab/optimizers/fused_adamw_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "muonlab/core/simd_clones.h"
#include "muonlab/optimizers/cpu_pass.h"

namespace muonlab::optim {

namespace {

// The coefficients in fp32, as LibTorch's fp32 ops take their scalars.
struct AdamWFloats {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, neg_step_size, sqrt_c2, eps;
};

// Locals and __restrict__ arrays: through a reference the compiler would
// reload the coefficients after every store (the fused Muon pass ran at half
// speed that way).
MUONLAB_SIMD_CLONES void adamw_chunk(float* __restrict__ param, const float* __restrict__ grad,
                                     float* __restrict__ exp_avg, float* __restrict__ exp_avg_sq, int64_t begin,
                                     int64_t end, AdamWFloats k) {
  const float decay = k.decay, beta1 = k.beta1, one_minus_beta1 = k.one_minus_beta1, beta2 = k.beta2,
              one_minus_beta2 = k.one_minus_beta2, neg_step_size = k.neg_step_size, sqrt_c2 = k.sqrt_c2, eps = k.eps;
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i];
    const float m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    const float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;  // addcmul's order: (value t1) t2
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const float denom = std::sqrt(v) / sqrt_c2 + eps;
    param[i] = decay * param[i] + neg_step_size * (m / denom);
  }
}

}  // namespace

bool fused_adamw_cpu_applies(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& exp_avg,
                             const torch::Tensor& exp_avg_sq) {
  return fp32_cpu_contiguous(param) && fp32_cpu_contiguous(grad) && fp32_cpu_contiguous(exp_avg) &&
         fp32_cpu_contiguous(exp_avg_sq) && grad.numel() == param.numel() && exp_avg.numel() == param.numel() &&
         exp_avg_sq.numel() == param.numel();
}

void fused_adamw_cpu_step(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                          torch::Tensor& exp_avg_sq, const FusedAdamWCoefficients& k) {
  TORCH_CHECK(fused_adamw_cpu_applies(param, grad, exp_avg, exp_avg_sq),
              "fused AdamW step: parameter, gradient and moments must be contiguous fp32 CPU tensors of ",
              param.numel(), " elements");
  const AdamWFloats f{static_cast<float>(k.decay),       static_cast<float>(k.beta1),
                      static_cast<float>(1.0 - k.beta1), static_cast<float>(k.beta2),
                      static_cast<float>(1.0 - k.beta2), static_cast<float>(-k.step_size),
                      static_cast<float>(k.sqrt_c2),     static_cast<float>(k.eps)};
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = exp_avg.data_ptr<float>();
  float* v = exp_avg_sq.data_ptr<float>();
  at::parallel_for(int64_t{0}, param.numel(), kCpuPassGrain,
                   [&](int64_t begin, int64_t end) { adamw_chunk(p, g, m, v, begin, end, f); });
}

}  // namespace muonlab::optim
