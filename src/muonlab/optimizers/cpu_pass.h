// What the optimizers' one-pass CPU loops share (fused_muon_cpu.h,
// fused_adamw_cpu.h): how they cut work into tasks, and which tensors they
// may read and write through a float pointer.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace muonlab::optim {

// Elements per task: large enough that a task's overhead is negligible,
// small enough that two threads share a 768 x 768 matrix.
inline constexpr int64_t kCpuPassGrain = 1 << 15;

// Defined, dense, on the CPU, fp32 and contiguous.
inline bool fp32_cpu_contiguous(const torch::Tensor& t) {
  return t.defined() && t.layout() == torch::kStrided && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 &&
         t.is_contiguous();
}

}  // namespace muonlab::optim
