#include "muonlab/bench/dist_bench.h"

#include <algorithm>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <c10/core/DeviceGuard.h>
#include <nlohmann/json.hpp>

#include "muonlab/bench/timing.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"
#include "muonlab/distributed/data_parallel.h"
#include "muonlab/distributed/launcher.h"
#include "muonlab/distributed/process_group.h"
#include "muonlab/optimizers/state_bytes.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::bench {

namespace {
using Clock = std::chrono::steady_clock;

// For the launcher's failure test: this rank aborts before its first
// collective, and the others must not wait on it forever.
void abort_if_asked(int64_t rank) {
  const char* abort_rank = std::getenv("MUONLAB_BENCH_DIST_ABORT_RANK");
  if (abort_rank != nullptr && std::to_string(rank) == abort_rank) std::abort();
}

// Timed training steps of one optimizer on this rank.
DistBenchRow time_optimizer(const DistBenchConfig& config, const std::string& optimizer_name,
                            const c10::intrusive_ptr<compat::CollectiveGroup>& group, const torch::Device& device,
                            int64_t rank, int64_t world_size) {
  models::ModelConfig model_config = models::model_preset(config.preset);
  const int64_t seq_len = config.seq_len > 0 ? config.seq_len : model_config.block_size;
  torch::manual_seed(0);
  models::Transformer model(model_config);
  model->to(device);
  training::OptimizerSettings settings;
  settings.name = optimizer_name;
  settings.ns_steps = training::is_muon_variant(optimizer_name)
                          ? optim::default_ns_steps(training::muon_variant(optimizer_name))
                          : optim::default_ns_steps(optim::SecondMomentKind::kNone);
  training::TrainOptimizer optimizer(model, settings);
  std::unique_ptr<distributed::DataParallel> parallel;
  if (group) {
    distributed::DataParallelOptions options;
    options.bucket_bytes = config.bucket_mb << 20;
    parallel = std::make_unique<distributed::DataParallel>(group, model->parameters(), optimizer.muon(),
                                                           optimizer.adamw(), options);
  }
  torch::manual_seed(static_cast<uint64_t>(1000 + rank));  // each rank its own batch
  const torch::Tensor tokens =
      torch::randint(model_config.vocab_size, {config.batch, seq_len + 1}, torch::kLong).to(device);
  const torch::Tensor inputs = tokens.narrow(1, 0, seq_len), targets = tokens.narrow(1, 1, seq_len);

  Timing step, compute, comm, update;  // the timed steps' phases
  for (int i = 0; i < config.warmup + config.steps; ++i) {
    // Each clock reading waits for the GPU's queued work (no-op on the CPU).
    const auto now = [&] {
      synchronize(device);
      return Clock::now();
    };
    const auto start = now();
    optimizer.zero_grad();
    if (parallel) parallel->prepare_backward(true);
    models::training_loss(model->forward(inputs), targets).backward();
    const auto computed = now();
    if (parallel) {
      parallel->synchronize_gradients();
      parallel->sum_over_ranks({0.0, parallel->local_gradient_square_sum()});
    }
    const auto synced = now();
    Clock::time_point stepped;
    optimizer.step(false, [&] {
      stepped = now();
      if (parallel) parallel->gather_updated_parameters();
    });
    const auto stop = now();
    if (i < config.warmup) continue;
    step.seconds.push_back(seconds_between(start, stop));
    compute.seconds.push_back(seconds_between(start, computed));
    comm.seconds.push_back(seconds_between(computed, synced) + seconds_between(stepped, stop));
    update.seconds.push_back(seconds_between(synced, stepped));
  }
  DistBenchRow row;
  row.ranks = world_size;
  row.optimizer = optimizer_name;
  row.step_seconds = step.median();
  row.compute_seconds = compute.median();
  row.comm_seconds = comm.median();
  row.optimizer_seconds = update.median();
  row.bytes_sent_per_rank = parallel ? parallel->bytes_sent_per_step() : 0.0;
  row.tokens_per_second = static_cast<double>(world_size * config.batch * seq_len) / row.step_seconds;
  double state_bytes = 0;
  if (optimizer.muon() != nullptr) state_bytes += static_cast<double>(optim::optimizer_state_bytes(*optimizer.muon()));
  if (optimizer.adamw() != nullptr) state_bytes += static_cast<double>(optim::optimizer_state_bytes(*optimizer.adamw()));
  // The largest rank's, through the sum of one-hot slots.
  if (parallel) {
    std::vector<double> slots(static_cast<size_t>(world_size), 0.0);
    slots[static_cast<size_t>(parallel->rank())] = state_bytes;
    slots = parallel->sum_over_ranks(slots);
    state_bytes = *std::max_element(slots.begin(), slots.end());
  }
  row.state_bytes_per_rank = state_bytes;
  return row;
}

nlohmann::json to_json(const DistBenchRow& r) {
  return {{"ranks", r.ranks},         {"optimizer", r.optimizer}, {"step_s", r.step_seconds},
          {"compute_s", r.compute_seconds}, {"comm_s", r.comm_seconds}, {"optimizer_s", r.optimizer_seconds},
          {"bytes_sent", r.bytes_sent_per_rank}, {"tokens_per_s", r.tokens_per_second},
          {"state_bytes", r.state_bytes_per_rank}};
}

DistBenchRow from_json(const nlohmann::json& j) {
  DistBenchRow r;
  r.ranks = j.at("ranks");
  r.optimizer = j.at("optimizer");
  r.step_seconds = j.at("step_s");
  r.compute_seconds = j.at("compute_s");
  r.comm_seconds = j.at("comm_s");
  r.optimizer_seconds = j.at("optimizer_s");
  r.bytes_sent_per_rank = j.at("bytes_sent");
  r.tokens_per_second = j.at("tokens_per_s");
  r.state_bytes_per_rank = j.at("state_bytes");
  return r;
}

// The worker's command line: the same settings, as `bench dist` options.
std::vector<std::string> worker_command(const DistBenchConfig& config, const std::string& result_path) {
  std::vector<std::string> command = {"bench", "dist", "--worker", result_path, "--preset", config.preset,
                                      "--batch", std::to_string(config.batch), "--seq-len",
                                      std::to_string(config.seq_len), "--warmup", std::to_string(config.warmup),
                                      "--steps", std::to_string(config.steps), "--bucket-mb",
                                      std::to_string(config.bucket_mb), "--threads", std::to_string(config.threads),
                                      "--device", config.device, "--optimizers"};
  command.insert(command.end(), config.optimizers.begin(), config.optimizers.end());
  return command;
}

}  // namespace

void run_dist_bench_rank(const DistBenchConfig& config, const std::string& result_path) {
  const distributed::DistEnv env = distributed::dist_env_from_environment();
  at::set_num_threads(config.threads);
  abort_if_asked(env.rank);
  const torch::Device device =
      distributed::rank_device(config.device, env, torch::cuda::is_available() ? torch::cuda::device_count() : 0);
  c10::OptionalDeviceGuard on_rank_device;
  if (device.is_cuda() && device.has_index()) on_rank_device.reset_device(device);
  c10::intrusive_ptr<compat::CollectiveGroup> group;
  if (env.distributed()) group = distributed::collective_group(env, device, std::chrono::seconds(300), "");
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& name : config.optimizers) {
    rows.push_back(to_json(time_optimizer(config, name, group, device, env.rank, env.world_size)));
  }
  if (env.rank == 0) std::ofstream(result_path) << rows.dump(2) << "\n";
}

std::vector<DistBenchRow> run_dist_bench(const DistBenchConfig& config, std::ostream& log) {
  const std::string result_path =
      (std::filesystem::temp_directory_path() / fmt::format("muonlab-bench-dist-{}.json", ::getpid())).string();
  std::vector<DistBenchRow> rows;
  for (const int64_t ranks : config.ranks) {
    std::filesystem::remove(result_path);
    distributed::LaunchOptions launch;
    launch.processes = ranks;
    launch.command = worker_command(config, result_path);
    std::ostringstream launch_log;
    const auto result = distributed::launch(launch, launch_log);
    if (result.exit_code != 0) fail("bench dist: {} rank(s): {}\n{}", ranks, result.failure, launch_log.str());
    for (const auto& row : nlohmann::json::parse(read_whole_file(result_path))) rows.push_back(from_json(row));
    log << fmt::format("bench dist: {} rank(s) done\n", ranks) << std::flush;
  }
  std::filesystem::remove(result_path);
  return rows;
}

std::string format_dist_bench(const std::vector<DistBenchRow>& rows, const DistBenchConfig& config) {
  std::string text = fmt::format(
      "data-parallel training steps of {}, {} on this machine, {} sequences per rank, {} thread(s) per rank, "
      "median of {} steps\n",
      config.preset, config.device == "cpu" ? "CPU ranks over c10d Gloo" : "one GPU per rank over c10d NCCL",
      config.batch, config.threads, config.steps);
  text += fmt::format("{:>5}  {:<9} {:>9} {:>12} {:>9} {:>9} {:>14} {:>11} {:>11} {:>14}\n", "ranks", "optimizer",
                      "step ms", "fwd+bwd ms", "comm ms", "opt ms", "MB sent/rank", "tokens/s", "efficiency",
                      "state MB/rank");
  std::map<std::string, double> one_rank;  // tokens/s of each optimizer on one rank
  for (const auto& r : rows) {
    if (r.ranks == 1) one_rank[r.optimizer] = r.tokens_per_second;
  }
  for (const auto& r : rows) {
    const auto base = one_rank.find(r.optimizer);
    const std::string efficiency =
        base == one_rank.end() ? "n/a"
                               : fmt::format("{:.2f}", r.tokens_per_second / (static_cast<double>(r.ranks) * base->second));
    text += fmt::format("{:>5}  {:<9} {:>9.2f} {:>12.2f} {:>9.2f} {:>9.2f} {:>14.2f} {:>11.0f} {:>11} {:>14.2f}\n",
                        r.ranks, r.optimizer, 1e3 * r.step_seconds, 1e3 * r.compute_seconds, 1e3 * r.comm_seconds,
                        1e3 * r.optimizer_seconds, r.bytes_sent_per_rank / 1e6, r.tokens_per_second, efficiency,
                        r.state_bytes_per_rank / 1e6);
  }
  return text +
         "comm: gradient all-reduce (+ for muon, the all-to-all of its gradients and the all-gather of its matrices); "
         "opt: this rank's optimizer step (distributed Muon: NS on its share only); MB sent: per rank per step, ring "
         "all-reduce 2(N-1)/N x bytes, all-to-all and all-gather (N-1)/N x the padded buffer each; efficiency: "
         "tokens/s over N x one rank's; state MB/rank: optimizer state held by the fullest rank (Muon's and AdamW's "
         "sharded by owner)\n";
}

}  // namespace muonlab::bench
