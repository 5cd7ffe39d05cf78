// Whether this machine multiplies bfloat16 matrices natively, which decides
// the `auto` precisions (optimizer.ns_dtype, run.dtype): bf16 where the
// hardware has bf16 dot-product instructions, fp32 where bf16 would be
// emulated. Measured on an AMD EPYC with AVX512-BF16 under Debian's
// LibTorch 1.13: a bf16 matmul runs at about 5x fp32 (docs/benchmarks.md);
// without those instructions oneDNN converts and loses most of that.
#pragma once

#include <torch/torch.h>

#include <string>

namespace muonlab {

// The CPU's bf16 matrix instructions by name ("AMX-BF16", "AVX512-BF16",
// "BF16" on ARM), or "" when it has none.
std::string cpu_bf16_instructions();

// CUDA devices from Ampere (compute capability 8) on have bf16 tensor
// cores; on the CPU, cpu_bf16_instructions() decides.
bool has_native_bf16(const torch::Device& device);

// Why `auto` chose what it chose on `device`, for the line a run prints at
// its start: "AVX512-BF16", "no bf16 instructions on this CPU", "CUDA".
std::string native_bf16_reason(const torch::Device& device);

}  // namespace muonlab
