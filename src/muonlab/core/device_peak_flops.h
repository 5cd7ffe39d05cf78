// Peak dense FLOP/s of the device a run trains on, the denominator of MFU
// (model FLOPs utilization, as PaLM and nanoGPT define it: the model's
// training FLOPs per second over the hardware's peak).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

namespace muonlab {

// "cpu", or the CUDA device's name ("NVIDIA H100 80GB HBM3"); "cuda:N" when
// LibTorch was built without CUDA headers to ask.
std::string device_name(const torch::Device& device);

// Dense tensor-core peak for the matmul dtype (bf16, or fp32 without TF32,
// which LibTorch leaves off), for the GPUs in the table; nullopt for CPUs and
// unknown GPUs, where MFU needs run.peak_tflops.
std::optional<double> peak_flops(const std::string& device_name, torch::ScalarType dtype);

}  // namespace muonlab
