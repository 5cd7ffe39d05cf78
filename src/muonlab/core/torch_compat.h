// Every difference between the LibTorch versions muonlab builds against
// (Debian's 1.13 on CPU machines, PyTorch 2.x on GPU machines) lives here,
// so the rest of the code is written once.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define MUONLAB_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||          \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace muonlab::compat {

// torch::optim::Optimizer::state() is keyed by a string of the TensorImpl
// address in 1.13 and by the TensorImpl pointer itself from 2.0 on.
#if MUONLAB_TORCH_AT_LEAST(2, 0)
using OptimizerStateKey = void*;
inline OptimizerStateKey optimizer_state_key(const torch::Tensor& param) {
  return param.unsafeGetTensorImpl();
}
#else
using OptimizerStateKey = std::string;
inline OptimizerStateKey optimizer_state_key(const torch::Tensor& param) {
  return c10::guts::to_string(param.unsafeGetTensorImpl());
}
#endif

// Optimizer::zero_grad() took no argument before 2.0 (it zeroed in place);
// 2.x takes set_to_none and defaults to true. muonlab always frees them.
inline void zero_grad(torch::optim::Optimizer& optimizer) {
#if MUONLAB_TORCH_AT_LEAST(2, 0)
  optimizer.zero_grad(/*set_to_none=*/true);
#else
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.mutable_grad().defined()) p.mutable_grad().reset();
    }
  }
#endif
}

// Softmax attention through PyTorch's fused kernels: the public
// scaled_dot_product_attention from 2.0 on, the private prototype of 1.13
// before (same math, same default scale 1/sqrt(q.size(-1)), no flash path).
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const c10::optional<torch::Tensor>& mask,
                                                  bool is_causal) {
#if MUONLAB_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, is_causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0,
                                                       /*need_attn_weights=*/false, is_causal));
#endif
}

inline std::string torch_version() { return TORCH_VERSION; }

}  // namespace muonlab::compat
