// Every difference between the LibTorch versions muonlab builds against
// (Debian's 1.13 on CPU machines, PyTorch 2.x on GPU machines) lives here,
// so the rest of the code is written once.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <string>
#include <vector>

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

// Mixed precision, as `with torch.autocast(device.type, dtype)`: matmuls
// run in `dtype` while weights stay fp32, on CUDA or on the CPU. 2.4 made
// the switches per device type and deprecated the per-device ones of 1.13.
class Autocast {
 public:
  Autocast(const torch::Device& device, bool enabled, at::ScalarType dtype)
      : cuda_(device.is_cuda()), was_enabled_(is_enabled(cuda_)), previous_dtype_(current_dtype(cuda_)) {
    set(cuda_, enabled, dtype);
  }
  ~Autocast() {
    set(cuda_, was_enabled_, previous_dtype_);
    at::autocast::clear_cache();  // the casts of this step's weights
  }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

  static bool is_enabled(bool cuda) {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
    return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
    return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
  }
  // What the matmuls autocast to on CUDA or the CPU (whether or not on).
  static at::ScalarType current_dtype(bool cuda) {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
    return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
    return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
  }

 private:
  static void set(bool cuda, bool enabled, at::ScalarType dtype) {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
    const auto type = cuda ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, enabled);
    at::autocast::set_autocast_dtype(type, dtype);
#else
    if (cuda) {
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
#endif
  }

  bool cuda_;
  bool was_enabled_;
  at::ScalarType previous_dtype_;
};

// Multi-tensor lerp (one launch for a whole list on CUDA): 2.0 added
// _foreach_lerp; before it, the same lerp per tensor.
inline void foreach_lerp_(at::TensorList self, at::TensorList end, double weight) {
#if MUONLAB_TORCH_AT_LEAST(2, 0)
  at::_foreach_lerp_(self, end, weight);
#else
  for (size_t i = 0; i < self.size(); ++i) self[i].lerp_(end[i], weight);
#endif
}

inline std::vector<torch::Tensor> foreach_lerp(at::TensorList self, at::TensorList end, double weight) {
#if MUONLAB_TORCH_AT_LEAST(2, 0)
  return at::_foreach_lerp(self, end, weight);
#else
  std::vector<torch::Tensor> result;
  result.reserve(self.size());
  for (size_t i = 0; i < self.size(); ++i) result.push_back(self[i].lerp(end[i], weight));
  return result;
#endif
}

// PyTorch's fused AdamW kernel (torch.optim.AdamW(fused=True)): 2.0 on, on
// CUDA. Where it is missing muonlab's multi-tensor AdamW runs instead.
inline bool has_fused_adamw(const torch::Device& device) {
#if MUONLAB_TORCH_AT_LEAST(2, 0)
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

// One AdamW step of every tensor in the lists; `steps` holds each
// parameter's 1-based step count (fp32, on the parameters' device). Only
// called where has_fused_adamw() says the kernel exists.
inline void fused_adamw_(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                         at::TensorList exp_avg_sqs, at::TensorList steps, double lr, double beta1,
                         double beta2, double weight_decay, double eps) {
#if MUONLAB_TORCH_AT_LEAST(2, 0)
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                    weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
#else
  (void)params, (void)grads, (void)exp_avgs, (void)exp_avg_sqs, (void)steps, (void)lr, (void)beta1,
      (void)beta2, (void)weight_decay, (void)eps;
  TORCH_CHECK(false, "fused AdamW needs LibTorch 2.0 or later");
#endif
}

// c10d's TCPStore serves over libuv by default from 2.4 and refuses to
// start, client or server, where PyTorch was built without libuv (Debian
// 13's 2.6 is). After such a refusal this turns libuv off in `options` and
// says the caller should retry; any other error is not its business. A
// template, so that this header, which every file includes, need not
// include c10d's store header.
template <typename TcpStoreOptions>
bool turn_off_missing_libuv(TcpStoreOptions& options, const std::exception& refusal) {
#if MUONLAB_TORCH_AT_LEAST(2, 4)
  if (!options.useLibUV || std::string(refusal.what()).find("without libuv") == std::string::npos) {
    return false;
  }
  options.useLibUV = false;
  return true;
#else
  (void)options, (void)refusal;
  return false;
#endif
}

// One GEMM per group of rows, all in one call (a MoE layer's experts, each
// on its own tokens): rows [R, in] grouped consecutively, weights
// [G, in, out], group_ends [G] int32 on the rows' device (the cumulative row
// counts). 2.9 added at::_grouped_mm with kernels on CUDA (on Hopper, bf16
// with the groups' sizes never read by the host) and on the CPU; it needs
// 16-byte-aligned rows, and autocast does not cast its inputs.
constexpr bool kHasGroupedMm = MUONLAB_TORCH_AT_LEAST(2, 9);

inline torch::Tensor grouped_mm(const torch::Tensor& rows, const torch::Tensor& weights,
                                const torch::Tensor& group_ends) {
#if MUONLAB_TORCH_AT_LEAST(2, 9)
  return at::_grouped_mm(rows, weights, group_ends);
#else
  (void)rows, (void)weights, (void)group_ends;
  TORCH_CHECK(false, "grouped GEMM (at::_grouped_mm) needs LibTorch 2.9 or later");
#endif
}

inline std::string torch_version() { return TORCH_VERSION; }

}  // namespace muonlab::compat
