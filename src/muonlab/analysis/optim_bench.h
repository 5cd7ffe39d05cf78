// `muonlab bench optim`: the optimizer step on GPT-2 small's matrix set
// (per layer: QKV 2304x768, attention out 768x768, MLP 3072x768 and
// 768x3072), Muon batched against the per-parameter loop of the Python
// implementations, with a plain batched matmul of the NS shapes measured in
// the same run as the practical ceiling.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::analysis {

struct OptimBenchConfig {
  torch::Device device = torch::kCPU;
  int64_t layers = 12;
  int64_t d_model = 768;
  int64_t ns_steps = 5;
  optim::NsDtype ns_dtype = optim::NsDtype::kAuto;
  int warmup = 1;
  int reps = 3;
  uint64_t seed = 0;
};

struct OptimBenchRow {
  std::string name;
  double seconds_per_step = 0;  // median
  double ns_gflop = 0;          // NS matmul work per step (0 for AdamW)
  double gflops = 0;            // ns_gflop / seconds
  double of_matmul = 0;         // gflops / the plain matmul's
  double vs_loop = 0;           // loop time / this time
};

struct OptimBenchReport {
  std::string device;
  std::string ns_dtype;
  int64_t layers = 0;
  int64_t d_model = 0;
  int64_t matrices = 0;
  int64_t parameters = 0;
  double matmul_gflops = 0;  // the ceiling
  std::vector<OptimBenchRow> rows;
};

OptimBenchReport run_optim_bench(const OptimBenchConfig& config);
std::string format_optim_bench(const OptimBenchReport& report);

// The Linear weight shapes (out x in) of one GPT-2 block of width d.
std::vector<std::vector<int64_t>> gpt2_block_matrix_shapes(int64_t d_model);

}  // namespace muonlab::analysis
