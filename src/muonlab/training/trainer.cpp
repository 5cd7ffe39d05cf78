#include "muonlab/training/trainer.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <c10/core/DeviceGuard.h>
#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/device_peak_flops.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/models/model_stats.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/run_folder.h"
#include "muonlab/distributed/data_parallel.h"
#include "muonlab/training/metrics_csv.h"
#include "muonlab/training/one_step_metrics.h"
#include "muonlab/distributed/process_group.h"
#include "muonlab/distributed/rank_watch.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;

// Mean loss over the first eval_tokens of the validation split (whole
// batches, at least one), always the same batches. With several ranks each
// evaluates every world_size-th batch and the sums are added up.
double evaluate(models::Transformer& model, data::TokenLoader& val, const TrainConfig& config,
                const torch::Device& device, int64_t& tokens, distributed::DataParallel* parallel) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t batch_tokens = config.data.batch_size * config.data.seq_len;
  const auto batches = static_cast<uint64_t>(
      std::clamp<int64_t>((config.run.eval_tokens + batch_tokens - 1) / batch_tokens, 1,
                          static_cast<int64_t>(val.batches_per_epoch())));
  val.restore({0, 0});
  double total = 0;
  for (uint64_t b = 0; b < batches; ++b) {
    data::Batch batch = val.next();
    if (parallel != nullptr && static_cast<int64_t>(b) % parallel->world_size() != parallel->rank()) continue;
    compat::CudaAutocast autocast(config.run.dtype == "bf16", torch::kBFloat16);
    auto output = model->forward(batch.inputs.to(device));
    total += models::next_token_loss(output.logits, batch.targets.to(device)).item<double>();
  }
  model->train();
  if (parallel != nullptr) total = parallel->sum_over_ranks({total})[0];
  tokens = static_cast<int64_t>(batches) * batch_tokens;
  return total / static_cast<double>(batches);
}

// The denominator of MFU: run.peak_tflops, else the device's table entry.
std::optional<double> peak_flops_of_run(const TrainConfig& config, const torch::Device& device) {
  if (config.run.peak_tflops > 0) return config.run.peak_tflops * 1e12;
  return peak_flops(device_name(device), config.run.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32);
}

// MoE balance over all layers: the busiest expert's share of assignments
// over the balanced share (1 = perfect balance), and the dropped fraction.
void add_routing_metrics(nlohmann::ordered_json& record, const std::vector<models::MoeStats>& layers) {
  if (layers.empty()) return;
  double max_load_ratio = 0;
  int64_t dropped = 0, assignments = 0;
  for (const auto& layer : layers) {
    max_load_ratio = std::max(max_load_ratio, layer.load.max().item<double>() * layer.load.numel());
    dropped += layer.dropped;
    assignments += layer.assignments;
  }
  record["moe_max_load_ratio"] = max_load_ratio;
  record["moe_dropped_fraction"] = static_cast<double>(dropped) / static_cast<double>(std::max<int64_t>(assignments, 1));
}

// Set by SIGINT/SIGTERM; the loop checkpoints and stops after its step.
std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int) { stop_requested = true; }

// Installs the handlers for one run and restores the previous ones after.
class StopSignals {
 public:
  StopSignals() {
    stop_requested = false;
    previous_int_ = std::signal(SIGINT, request_stop);
    previous_term_ = std::signal(SIGTERM, request_stop);
  }
  ~StopSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

// Keeps the records of steps up to `step` (a resumed run rewrites the rest).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_discarded() && record.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  in.close();
  std::ofstream(path, std::ios::trunc) << kept;
}

// Written by rank 0 alone when several ranks train.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool writer) : path_(path) {
    if (!writer) return;
    out_.open(path, std::ios::app);
    if (!out_) fail("cannot create metrics file '{}'", path);
  }
  void write(const nlohmann::ordered_json& record) {
    if (out_.is_open()) out_ << record.dump() << "\n" << std::flush;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

// This process's place in a group of ranks (RANK, WORLD_SIZE, ... set), or
// null for a one-process run. Gloo on the CPU, NCCL on GPUs.
std::unique_ptr<distributed::DataParallel> join_ranks(const distributed::DistEnv& env, const TrainConfig& config, const torch::Device& device,
                                         models::Transformer& model, TrainOptimizer& optimizer) {
  if (!env.distributed()) return nullptr;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config.distributed.timeout_s * 1000));
  auto group = distributed::collective_group(env, device, timeout);
  auto watch = std::make_shared<distributed::RankWatch>(distributed::store_client(env, timeout), env.rank, env.world_size);
  distributed::DataParallelOptions options;
  options.shard_muon = config.distributed.shard_muon;
  options.overlap = config.distributed.overlap;
  options.bucket_bytes = config.distributed.bucket_mb << 20;
  options.timeout = timeout;
  return std::make_unique<distributed::DataParallel>(group, model->parameters(), optimizer.muon(), options, watch);
}

}  // namespace

TrainResult train(const TrainConfig& config, const TrainCallbacks& callbacks, bool resume) {
  const distributed::DistEnv env = distributed::dist_env_from_environment();
  const bool lead = env.rank == 0;  // writes metrics, checkpoints and weights
  fs::create_directories(config.run.out_dir);
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));
  const torch::Device device =
      distributed::rank_device(config.run.device, env, torch::cuda::is_available() ? torch::cuda::device_count() : 0);
  // Work that names no GPU index (new CUDA tensors, NCCL's streams) goes to this rank's GPU.
  c10::OptionalDeviceGuard on_rank_device;
  if (device.is_cuda() && device.has_index()) on_rank_device.reset_device(device);

  models::Transformer model(config.model);
  model->to(device);
  data::TokenLoader train_loader = make_run_loader(config.data.train, config, config.data.shuffle, env.rank, env.world_size);
  std::optional<data::TokenLoader> val_loader;
  // Validation batches are whole on every rank; evaluate() divides them.
  if (!config.data.val.empty()) val_loader.emplace(make_run_loader(config.data.val, config, false));
  TrainOptimizer optimizer(model, config.optimizer);
  std::vector<torch::Tensor> parameters = model->parameters();
  std::unique_ptr<distributed::DataParallel> parallel = join_ranks(env, config, device, model, optimizer);

  TrainResult result;
  result.rank = env.rank;
  result.world_size = env.world_size;
  int64_t first_step = 0;
  const std::string metrics_path = (fs::path(config.run.out_dir) / "metrics.jsonl").string();
  if (resume) {
    std::optional<std::string> checkpoint = newest_checkpoint(config.run.out_dir);
    if (!checkpoint) fail("--resume: no complete checkpoint under '{}/checkpoints'", config.run.out_dir);
    CheckpointState state = load_checkpoint(*checkpoint, config, model, optimizer, env.world_size);
    train_loader.restore(state.cursor);
    first_step = result.resumed_from = state.step;
    if (parallel) parallel->drop_unowned_optimizer_state();
    if (lead) truncate_metrics(metrics_path, first_step);
  } else if (lead) {
    std::ofstream(metrics_path, std::ios::trunc);
  }
  // Only now, so a refused resume leaves the previous run's config alone.
  if (lead) {
    write_text_file_atomically((fs::path(config.run.out_dir) / "config.toml").string(), format_train_config(config));
  }
  if (parallel) parallel->broadcast_parameters();
  MetricsLog metrics(metrics_path, lead);
  result.metrics_path = metrics.path();
  StopSignals signals;
  // Under distributed Muon every rank first receives the whole optimizer
  // state, so rank 0 writes the checkpoint one process would.
  auto checkpoint_now = [&](int64_t steps_done) {
    if (parallel) parallel->gather_optimizer_state();
    if (lead) {
      result.checkpoint = save_checkpoint(config, {steps_done, train_loader.cursor(), env.world_size}, model, optimizer);
    }
    if (parallel) {
      parallel->drop_unowned_optimizer_state();
      parallel->barrier();  // no rank runs ahead of (or exits before) a checkpoint being written
    }
  };
  const int64_t tokens_per_step =
      config.run.grad_accum * config.data.batch_size * config.data.seq_len * env.world_size;
  const double flops_per_token = models::model_stats(config.model).training_flops_per_token(config.data.seq_len);
  const std::optional<double> peak = peak_flops_of_run(config, device);
  const ScheduleConfig adamw_schedule = adamw_part_schedule(config);
  const optim::NewtonSchulzConfig muon_ns_config = muon_options(config.optimizer).newton_schulz_config();
  const std::string metrics_csv_path = (fs::path(config.run.out_dir) / "metrics.csv").string();
  const auto start = std::chrono::steady_clock::now();

  auto run_eval = [&](int64_t step) {
    if (!val_loader) return;
    EvalReport report{step, 0, 0};
    report.val_loss = evaluate(model, *val_loader, config, device, report.tokens, parallel.get());
    result.final_val_loss = report.val_loss;
    metrics.write(nlohmann::ordered_json{{"step", step},
                                         {"val_loss", report.val_loss},
                                         {"val_tokens", report.tokens},
                                         {"tokens", step * tokens_per_step}});
    if (callbacks.on_eval && lead) callbacks.on_eval(report);
  };

  for (int64_t step = first_step; step < config.run.steps; ++step) {
    const double multiplier = schedule_multiplier(config.schedule, step, config.run.steps);
    optimizer.set_lr_multipliers(multiplier, schedule_multiplier(adamw_schedule, step, config.run.steps));
    if (config.momentum_start >= 0) {
      optimizer.set_muon_momentum(
          ramp_value({config.momentum_start, config.optimizer.momentum, config.momentum_warmup_steps}, step));
    }
    optimizer.zero_grad();
    double loss = 0;
    std::vector<models::MoeStats> routing;
    for (int64_t micro = 0; micro < config.run.grad_accum; ++micro) {
      data::Batch batch = train_loader.next();
      torch::Tensor micro_loss;
      {
        // Forward only: backward runs each op in the dtype its forward used.
        compat::CudaAutocast autocast(config.run.dtype == "bf16", torch::kBFloat16);
        auto output = model->forward(batch.inputs.to(device));
        micro_loss = models::training_loss(output, batch.targets.to(device)) / config.run.grad_accum;
        routing = output.moe;
      }
      if (parallel) parallel->prepare_backward(micro == config.run.grad_accum - 1);
      micro_loss.backward();
      loss += micro_loss.item<double>();
    }
    const int64_t steps_done = step + 1;
    const bool one_step_due = config.run.one_step_every > 0 && steps_done % config.run.one_step_every == 0;
    double grad_norm = 0;
    bool stop_now = stop_requested;
    if (parallel) {
      // Every rank reaches the same loss, norm and stop decision.
      parallel->set_step(steps_done);
      parallel->synchronize_gradients(/*everywhere=*/one_step_due);
      const auto sums = parallel->sum_over_ranks(
          {loss, stop_requested ? 1.0 : 0.0, parallel->local_gradient_square_sum()});
      loss = sums[0] / static_cast<double>(env.world_size);
      stop_now = sums[1] > 0;
      grad_norm = std::sqrt(sums[2]);
      // torch::nn::utils::clip_grad_norm_'s rule, on the global norm.
      const double clip = config.run.clip_grad_norm / (grad_norm + 1e-6);
      if (config.run.clip_grad_norm > 0 && std::isfinite(grad_norm) && clip < 1) parallel->scale_gradients(clip);
    } else if (config.run.clip_grad_norm > 0) {
      grad_norm = torch::nn::utils::clip_grad_norm_(parameters, config.run.clip_grad_norm);
    }
    nlohmann::ordered_json record = {{"step", steps_done}};
    if (std::isfinite(loss) && std::isfinite(grad_norm)) {
      const bool diagnose = config.run.diagnostics_every > 0 && steps_done % config.run.diagnostics_every == 0;
      // From the gradients the step is about to use (clipped, as Muon sees them).
      const auto one_step = one_step_due ? one_step_metrics(model->tagged_parameters(), config.optimizer,
                                                            one_step_group_sizes(config), muon_ns_config, steps_done)
                                     : std::vector<std::pair<std::string, double>>{};
      optimizer.step(diagnose, [&] {
        if (parallel) parallel->gather_updated_parameters();
      });

      StepReport report;
      report.step = steps_done;
      report.total_steps = config.run.steps;
      report.loss = loss;
      report.lr_multiplier = multiplier;
      report.grad_norm = grad_norm;
      report.tokens = report.step * tokens_per_step;
      report.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      report.tokens_per_second =
          (report.step - first_step) * tokens_per_step / std::max(report.elapsed_seconds, 1e-9);
      if (peak) report.mfu = report.tokens_per_second * flops_per_token / *peak;
      if (!routing.empty()) report.routing = models::describe_routing(routing);
      record.update({{"loss", loss}, {"lr_multiplier", multiplier}, {"grad_norm", grad_norm},
                     {"tokens", report.tokens}, {"elapsed_s", report.elapsed_seconds}});
      for (const auto& [name, lr] : optimizer.current_lrs()) record["lr_" + name] = lr;
      if (report.mfu >= 0) record["mfu"] = report.mfu;
      if (diagnose) {
        for (const auto& [name, rms] : optimizer.last_update_rms()) record["update_rms_" + name] = rms;
      }
      for (const auto& [name, value] : one_step) record[name] = value;
      add_routing_metrics(record, routing);
      metrics.write(record);
      if (callbacks.on_step && lead) callbacks.on_step(report);
      result.final_train_loss = loss;
    } else if (config.run.on_nonfinite == "stop") {
      std::optional<std::string> last_good = newest_checkpoint(config.run.out_dir);
      if (lead) write_metrics_csv(metrics_path, metrics_csv_path);
      fail("step {}: the {} is {} (non-finite); stopped without updating the weights. Last good checkpoint: {}. "
           "run.on_nonfinite = \"skip\" skips such steps instead",
           steps_done, std::isfinite(loss) ? "gradient norm" : "loss", std::isfinite(loss) ? grad_norm : loss,
           last_good ? *last_good + " (continue from it with --resume)" : "none yet (see run.checkpoint_every)");
    } else {
      // Skipped: the weights and optimizer state stay as they were.
      record.update({{"loss", loss}, {"grad_norm", grad_norm}, {"skipped", true}});
      metrics.write(record);
    }
    result.steps = steps_done;

    const bool last = steps_done == config.run.steps;
    if (last || (config.run.eval_every > 0 && steps_done % config.run.eval_every == 0)) run_eval(steps_done);
    if (last || (config.run.checkpoint_every > 0 && steps_done % config.run.checkpoint_every == 0)) {
      checkpoint_now(steps_done);
    }
    if (stop_now && !last) {
      checkpoint_now(steps_done);
      if (lead) write_metrics_csv(metrics_path, metrics_csv_path);
      result.interrupted = true;
      return result;
    }
  }
  if (!lead) return result;
  write_metrics_csv(metrics_path, metrics_csv_path);

  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value());
  result.weights_path = (fs::path(config.run.out_dir) / "model.safetensors").string();
  save_safetensors(result.weights_path, weights, {{"format", "pt"}, {"muonlab_preset", config.model_preset}});
  return result;
}

}  // namespace muonlab::training
