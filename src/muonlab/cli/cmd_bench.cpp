#include <iostream>
#include <memory>

#include "muonlab/analysis/optim_bench.h"
#include "muonlab/cli/commands.h"
#include "muonlab/core/errors.h"

namespace muonlab::cli {

namespace {

struct BenchOptimArgs {
  std::string device = "all";
  std::string ns_dtype = "auto";
  int64_t layers = 12;
  int64_t d_model = 768;
  int64_t ns_steps = 5;
  int warmup = 1;
  int reps = 3;
  int threads = 0;
};

std::vector<torch::Device> devices_for(const std::string& name) {
  if (name == "cpu") return {torch::kCPU};
  if (name == "cuda") {
    if (!torch::cuda::is_available()) fail("--device cuda: no CUDA device is available");
    return {torch::kCUDA};
  }
  if (name == "all") {
    std::vector<torch::Device> devices{torch::kCPU};
    if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
    return devices;
  }
  fail("--device {}: expected cpu, cuda or all", name);
}

void run_bench_optim(const BenchOptimArgs& args) {
  if (args.threads > 0) at::set_num_threads(args.threads);
  for (const auto& device : devices_for(args.device)) {
    analysis::OptimBenchConfig config;
    config.device = device;
    config.layers = args.layers;
    config.d_model = args.d_model;
    config.ns_steps = args.ns_steps;
    config.ns_dtype = optim::parse_ns_dtype(args.ns_dtype);
    config.warmup = args.warmup;
    config.reps = args.reps;
    std::cout << analysis::format_optim_bench(analysis::run_optim_bench(config)) << std::endl;
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks that print ratios against a baseline");
  bench->require_subcommand(1);

  auto args = std::make_shared<BenchOptimArgs>();
  auto* optim = bench->add_subcommand(
      "optim", "Optimizer step on GPT-2 small's matrices: Muon batched vs per-parameter loop");
  optim->add_option("--device", args->device, "cpu, cuda, or all available")
      ->capture_default_str();
  optim->add_option("--layers", args->layers, "transformer blocks of matrices")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  optim->add_option("--d-model", args->d_model, "width (768 is GPT-2 small; smaller for smoke tests)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  optim->add_option("--ns-steps", args->ns_steps, "Newton-Schulz steps K")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  optim->add_option("--ns-dtype", args->ns_dtype, "auto (bf16 on GPU, fp32 on CPU), bf16, fp32, fp64")
      ->capture_default_str();
  optim->add_option("--warmup", args->warmup, "untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  optim->add_option("--reps", args->reps, "timed steps (the median is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  optim->add_option("--threads", args->threads, "CPU threads (0: LibTorch's default)")
      ->capture_default_str();
  optim->callback([args] { run_bench_optim(*args); });
}

}  // namespace muonlab::cli
