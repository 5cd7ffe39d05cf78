// --device for the subcommands: "cpu", "cuda" or "cuda:N", and for
// benchmarks also "all" (the CPU, then CUDA where there is one). Asking for
// CUDA without a GPU, or for a GPU number past the last, fails naming the
// option.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace muonlab::cli {

torch::Device device_from_option(const std::string& name);
std::vector<torch::Device> devices_from_option(const std::string& name);

}  // namespace muonlab::cli
