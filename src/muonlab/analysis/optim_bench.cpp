#include "muonlab/analysis/optim_bench.h"

#include <fmt/format.h>

#include "muonlab/analysis/timing.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"

namespace muonlab::analysis {

std::vector<std::vector<int64_t>> gpt2_block_matrix_shapes(int64_t d_model) {
  return {{3 * d_model, d_model},   // attn.c_attn (fused QKV)
          {d_model, d_model},       // attn.c_proj
          {4 * d_model, d_model},   // mlp.c_fc
          {d_model, 4 * d_model}};  // mlp.c_proj
}

namespace {

// Parameters with fixed random gradients, so every step does the same work.
std::vector<torch::Tensor> make_matrices(const OptimBenchConfig& config) {
  torch::manual_seed(config.seed);
  std::vector<torch::Tensor> params;
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    for (const auto& shape : gpt2_block_matrix_shapes(config.d_model)) {
      auto p = (torch::randn(shape, torch::device(config.device)) * 0.02).set_requires_grad(true);
      p.mutable_grad() = torch::randn(shape, torch::device(config.device));
      params.push_back(p);
    }
  }
  return params;
}

double total_ns_flops(const std::vector<torch::Tensor>& params, int64_t steps) {
  double flops = 0;
  for (const auto& p : params) flops += optim::newton_schulz_flops(p.size(0), p.size(1), steps);
  return flops;
}

// GFLOP/s of X X^T on the largest NS bucket (all MLP matrices, 768 x 3072):
// the same kind of matmul NS spends most of its time in.
double plain_matmul_gflops(const OptimBenchConfig& config, torch::Dtype dtype) {
  const int64_t batch = 2 * config.layers;
  const int64_t m = config.d_model;
  const int64_t n = 4 * config.d_model;
  const auto X = torch::randn({batch, m, n}, torch::device(config.device).dtype(dtype));
  const auto timing = time_runs([&] { torch::bmm(X, X.transpose(1, 2)); }, config.device,
                                config.warmup, config.reps);
  return 2.0 * batch * m * m * n / timing.median() / 1e9;
}

OptimBenchRow time_optimizer(const std::string& name, torch::optim::Optimizer& optimizer,
                             const OptimBenchConfig& config, double ns_flops,
                             double matmul_gflops) {
  const auto timing = time_runs([&] { optimizer.step(); }, config.device, config.warmup,
                                config.reps);
  OptimBenchRow row;
  row.name = name;
  row.seconds_per_step = timing.median();
  row.ns_gflop = ns_flops / 1e9;
  row.gflops = row.ns_gflop / row.seconds_per_step;
  row.of_matmul = ns_flops > 0 ? row.gflops / matmul_gflops : 0;
  return row;
}

}  // namespace

OptimBenchReport run_optim_bench(const OptimBenchConfig& config) {
  const auto params = make_matrices(config);
  const auto dtype = optim::resolve_ns_dtype(config.ns_dtype, config.device);
  const double ns_flops = total_ns_flops(params, config.ns_steps);

  OptimBenchReport report;
  report.device = config.device.str();
  report.ns_dtype = short_dtype_name(dtype);
  report.layers = config.layers;
  report.d_model = config.d_model;
  report.matrices = static_cast<int64_t>(params.size());
  for (const auto& p : params) report.parameters += p.numel();
  report.matmul_gflops = plain_matmul_gflops(config, dtype);

  auto muon_options = [&](optim::NsBatching batching) {
    return optim::MuonOptions(0.02)
        .ns_steps(config.ns_steps)
        .ns_dtype(config.ns_dtype)
        .weight_decay(0)
        .ns_batching(batching);
  };
  optim::Muon batched(params, muon_options(optim::NsBatching::kAlways));
  optim::Muon looped(params, muon_options(optim::NsBatching::kNever));
  optim::AdamW adamw(params, optim::AdamWOptions(1e-3));

  auto loop_row = time_optimizer("muon, per-parameter loop", looped, config, ns_flops,
                                 report.matmul_gflops);
  auto batched_row = time_optimizer("muon, batched by shape", batched, config, ns_flops,
                                    report.matmul_gflops);
  auto adamw_row = time_optimizer("adamw (reference)", adamw, config, 0, report.matmul_gflops);
  loop_row.vs_loop = 1.0;
  batched_row.vs_loop = loop_row.seconds_per_step / batched_row.seconds_per_step;
  adamw_row.vs_loop = loop_row.seconds_per_step / adamw_row.seconds_per_step;
  report.rows = {loop_row, batched_row, adamw_row};
  return report;
}

std::string format_optim_bench(const OptimBenchReport& report) {
  std::string out = fmt::format(
      "optimizer step on GPT-2 matrices of width {}: {} layers, {} matrices, {:.1f}M parameters\n"
      "device {}, NS dtype {}; plain batched matmul (X X^T, MLP shapes): {:.1f} GFLOP/s\n",
      report.d_model, report.layers, report.matrices, report.parameters / 1e6, report.device, report.ns_dtype,
      report.matmul_gflops);
  out += fmt::format("{:<28} {:>12} {:>10} {:>10} {:>10} {:>9}\n", "optimizer", "ms/step",
                     "NS GFLOP", "GFLOP/s", "of matmul", "vs loop");
  for (const auto& row : report.rows) {
    const bool has_ns = row.ns_gflop > 0;
    out += fmt::format("{:<28} {:>12.2f} {:>10} {:>10} {:>10} {:>8.2f}x\n", row.name,
                       row.seconds_per_step * 1e3,
                       has_ns ? fmt::format("{:.1f}", row.ns_gflop) : "-",
                       has_ns ? fmt::format("{:.1f}", row.gflops) : "-",
                       has_ns ? fmt::format("{:.2f}", row.of_matmul) : "-", row.vs_loop);
  }
  return out;
}

}  // namespace muonlab::analysis
