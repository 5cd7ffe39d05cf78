#include "muonlab/analysis/dist_bench.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "muonlab/analysis/timing.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/gradient_sync.h"
#include "muonlab/training/process_group.h"

namespace muonlab::analysis {

namespace {

// For the launcher's failure test: this rank aborts before its first
// collective, and the others must not wait on it forever.
void abort_if_asked(int64_t rank) {
  const char* abort_rank = std::getenv("MUONLAB_BENCH_DIST_ABORT_RANK");
  if (abort_rank != nullptr && std::to_string(rank) == abort_rank) std::abort();
}

}  // namespace

DistBenchResult run_dist_bench(const DistBenchConfig& config) {
  const training::DistEnv env = training::dist_env_from_environment();
  DistBenchResult result;
  result.world_size = env.world_size;
  result.rank = env.rank;
  torch::manual_seed(0);
  models::Transformer model(models::model_preset(config.preset));
  std::vector<torch::Tensor> params = model->parameters();
  for (auto& p : params) {
    result.parameters += p.numel();
    p.mutable_grad() = torch::randn_like(p);
  }
  result.gradient_bytes = 4.0 * static_cast<double>(result.parameters);
  abort_if_asked(env.rank);
  if (!env.distributed()) return result;
  auto group = training::gloo_group(env, std::chrono::seconds(60));
  const auto timing = time_runs([&] { training::average_gradients(params, *group, config.bucket_mb << 20); },
                                torch::Device(torch::kCPU), config.warmup, config.reps);
  result.seconds_per_step = timing.median();
  const double n = static_cast<double>(env.world_size);
  result.bytes_sent_per_rank = 2 * (n - 1) / n * result.gradient_bytes;
  return result;
}

std::string format_dist_bench(const DistBenchResult& r, const DistBenchConfig& config) {
  std::string text = fmt::format(
      "data-parallel gradient all-reduce, c10d Gloo on CPU: {} ({:.1f}M parameters, {:.1f} MB of fp32 gradients), "
      "buckets of {} MB, median of {} steps\n",
      config.preset, r.parameters / 1e6, r.gradient_bytes / 1e6, config.bucket_mb, config.reps);
  if (r.world_size == 1) {
    return text + "1 rank: nothing to communicate (run under `muonlab launch -n N -- bench dist`)\n";
  }
  text += "ranks   ms/step   MB sent/rank/step   GB/s per rank\n";
  text += fmt::format("{:>5} {:>9.2f} {:>19.1f} {:>15.2f}\n", r.world_size, 1e3 * r.seconds_per_step,
                      r.bytes_sent_per_rank / 1e6, r.bytes_sent_per_rank / r.seconds_per_step / 1e9);
  return text + "(sent per rank: ring all-reduce, 2 (N-1)/N of the gradient bytes; the same volume a ZeRO-1 "
                "reduce-scatter + all-gather moves)\n";
}

}  // namespace muonlab::analysis
