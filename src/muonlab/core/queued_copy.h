// Host tensors to a GPU without stalling it.
#pragma once

#include <torch/torch.h>

namespace muonlab {

// `host` on `device`. To a GPU the copy goes from pinned memory, queued
// behind the work before it like any kernel: a plain copy from pageable
// memory first waits for the GPU to finish that work (a host sync), and
// leaves it idle while the next kernels are launched. LibTorch's caching
// host allocator keeps the pinned buffer until the copy has run. On the CPU,
// `host` itself.
inline torch::Tensor queued_copy_to(const torch::Tensor& host, const torch::Device& device) {
  if (device.is_cpu()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace muonlab
