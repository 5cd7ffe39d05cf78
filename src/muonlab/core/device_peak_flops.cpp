#include "muonlab/core/device_peak_flops.h"

#include <array>

#if defined(MUONLAB_TORCH_CUDA) && __has_include(<ATen/cuda/CUDAContext.h>)
#include <ATen/cuda/CUDAContext.h>
#define MUONLAB_CAN_NAME_CUDA_DEVICES 1
#endif

namespace muonlab {
namespace {

struct PeakEntry {
  const char* name_part;  // matched against the device name, first match wins
  double bf16_tflops;     // dense, without sparsity
  double fp32_tflops;     // CUDA cores (no TF32)
};

// Vendor datasheets. PCIe parts before SXM ones, so "H100" alone means SXM;
// "H200" also matches GH200.
constexpr std::array<PeakEntry, 7> kPeaks{{
    {"H100 PCIe", 756.0, 51.0},
    {"H100 NVL", 835.0, 60.0},
    {"H100", 989.4, 66.9},
    {"H200", 989.4, 66.9},
    {"A100", 312.0, 19.5},
    {"L40S", 362.1, 91.6},
    {"A10", 125.0, 31.2},
}};

}  // namespace

std::string device_name(const torch::Device& device) {
  if (!device.is_cuda()) return device.str();
#ifdef MUONLAB_CAN_NAME_CUDA_DEVICES
  int index = device.has_index() ? device.index() : 0;
  return at::cuda::getDeviceProperties(index)->name;
#else
  return device.str();
#endif
}

std::optional<double> peak_flops(const std::string& device_name, torch::ScalarType dtype) {
  for (const auto& entry : kPeaks) {
    if (device_name.find(entry.name_part) != std::string::npos) {
      return 1e12 * (dtype == torch::kBFloat16 || dtype == torch::kHalf ? entry.bf16_tflops : entry.fp32_tflops);
    }
  }
  return std::nullopt;
}

}  // namespace muonlab
