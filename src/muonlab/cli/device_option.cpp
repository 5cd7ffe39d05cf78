#include "muonlab/cli/device_option.h"

#include <c10/core/DeviceGuard.h>

#include <algorithm>
#include <cctype>

#include "muonlab/core/errors.h"

namespace muonlab::cli {

namespace {

// "cuda" or "cuda:N" with N a GPU number.
bool names_cuda(const std::string& name) {
  if (name == "cuda") return true;
  const std::string prefix = "cuda:";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return false;
  return std::all_of(name.begin() + prefix.size(), name.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The GPU `name` asks for, checked against those LibTorch sees. `cuda:N`
// also becomes the process's current GPU, as torch.cuda.set_device does, so
// that what a command allocates on "cuda" without a number lands there too.
torch::Device cuda_or_fail(const std::string& name) {
  const int64_t gpus = torch::cuda::device_count();
  if (gpus == 0) fail("--device {}: LibTorch sees no CUDA GPU on this machine; use --device cpu", name);
  const torch::Device device(name);
  if (!device.has_index()) return device;
  if (device.index() >= gpus) fail("--device {}: this machine has {} GPU(s), cuda:0 to cuda:{}", name, gpus, gpus - 1);
  static auto* current_gpu = new c10::OptionalDeviceGuard();  // never restored: the command's whole life
  current_gpu->reset_device(device);
  return device;
}

}  // namespace

torch::Device device_from_option(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (names_cuda(name)) return cuda_or_fail(name);
  fail("--device {}: expected cpu, cuda or cuda:N", name);
}

std::vector<torch::Device> devices_from_option(const std::string& name) {
  if (name == "cpu") return {torch::kCPU};
  if (names_cuda(name)) return {cuda_or_fail(name)};
  if (name == "all") {
    std::vector<torch::Device> devices{torch::kCPU};
    if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
    return devices;
  }
  fail("--device {}: expected cpu, cuda, cuda:N or all", name);
}

}  // namespace muonlab::cli
