// Every difference between the LibTorch versions muonlab builds against
// (Debian's 1.13 on CPU machines, PyTorch 2.x on GPU machines) lives here,
// so the rest of the code is written once.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define MUONLAB_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||          \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace c10d {
class Backend;
class ProcessGroup;
}  // namespace c10d

namespace muonlab::compat {
// c10d's collectives: ProcessGroupGloo and ProcessGroupNCCL derive from
// ProcessGroup up to 1.13 and from Backend from 2.0 on (a ProcessGroup then
// dispatches to Backends by device). muonlab holds the one it created.
#if MUONLAB_TORCH_AT_LEAST(2, 0)
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif


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

// Mixed precision on CUDA, as `with torch.autocast("cuda", dtype)`: matmuls
// run in `dtype` while weights stay fp32. 2.4 made the switches per device
// type and deprecated the CUDA-only ones that 1.13 has.
class CudaAutocast {
 public:
  CudaAutocast(bool enabled, at::ScalarType dtype) {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, enabled);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
    was_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
#endif
  }
  ~CudaAutocast() {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
#else
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
#endif
    at::autocast::clear_cache();  // the casts of this step's weights
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

  static bool enabled() {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
    return at::autocast::is_autocast_enabled(at::kCUDA);
#else
    return at::autocast::is_enabled();
#endif
  }

 private:
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

inline std::string torch_version() { return TORCH_VERSION; }

}  // namespace muonlab::compat
