#include "muonlab/cli/device_option.h"

#include "muonlab/core/errors.h"

namespace muonlab::cli {

namespace {

torch::Device cuda_or_fail() {
  if (!torch::cuda::is_available()) fail("--device cuda: no CUDA device is available");
  return torch::kCUDA;
}

}  // namespace

torch::Device device_from_option(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") return cuda_or_fail();
  fail("--device {}: expected cpu or cuda", name);
}

std::vector<torch::Device> devices_from_option(const std::string& name) {
  if (name == "cpu") return {torch::kCPU};
  if (name == "cuda") return {cuda_or_fail()};
  if (name == "all") {
    std::vector<torch::Device> devices{torch::kCPU};
    if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
    return devices;
  }
  fail("--device {}: expected cpu, cuda or all", name);
}

}  // namespace muonlab::cli
