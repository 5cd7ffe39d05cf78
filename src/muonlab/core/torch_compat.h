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

inline std::string torch_version() { return TORCH_VERSION; }

}  // namespace muonlab::compat
