#include "muonlab/training/trainer.h"

#include <cstring>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <algorithm>
#include <limits>
#include <filesystem>
#include <fstream>

#include <c10/core/DeviceGuard.h>
#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/device_peak_flops.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/folder_lock.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/models/model_stats.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/initial_weights.h"
#include "muonlab/training/evaluate_loss.h"
#include "muonlab/training/multiple_choice_eval.h"
#include "muonlab/training/run_folder.h"
#include "muonlab/training/step_sync.h"
#include "muonlab/training/tensorboard_events.h"
#include "muonlab/training/metrics_csv.h"
#include "muonlab/training/one_step_metrics.h"
#include "muonlab/training/read_loss_curves.h"
#include "muonlab/distributed/process_group.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;

// Mean loss over the first eval_tokens of the validation split (whole
// batches, at least one), always the same batches. With several ranks each
// evaluates every world_size-th batch and the sums are added up.
double evaluate(models::Transformer& model, data::TokenLoader& val, const TrainConfig& config,
                const torch::Device& device, int64_t& tokens, StepSync& sync,
                const std::function<void(int64_t done, int64_t batches)>& progress) {
  const int64_t batch_tokens = config.data.batch_size * config.data.seq_len;
  LossSumOptions options;
  options.batches = eval_batch_count(config.run.eval_tokens, batch_tokens, val.batches_per_epoch());
  options.bf16 = training_dtype(config.run.dtype, device) == torch::kBFloat16;  // as the training forwards
  options.computes = [&sync](int64_t index) { return sync.evaluates(index); };
  options.progress = progress;
  const double total = sync.totals({sum_of_batch_losses(model, val, device, options)})[0];
  tokens = options.batches * batch_tokens;
  return total / static_cast<double>(options.batches);
}

// The denominator of MFU: run.peak_tflops, else the device's table entry.
std::optional<double> peak_flops_of_run(const TrainConfig& config, const torch::Device& device) {
  if (config.run.peak_tflops > 0) return config.run.peak_tflops * 1e12;
  return peak_flops(device_name(device), training_dtype(config.run.dtype, device));
}

// MoE balance over all layers: the busiest expert's share of assignments
// over the balanced share (1 = perfect balance), and the dropped fraction.
void add_routing_metrics(nlohmann::ordered_json& record, const std::vector<models::MoeStats>& layers) {
  if (layers.empty()) return;
  double max_load_ratio = 0;
  int64_t dropped = 0, assignments = 0;
  for (const auto& layer : layers) {
    max_load_ratio = std::max(max_load_ratio, layer.load.max().item<double>() * layer.load.numel());
    dropped += layer.dropped.item<int64_t>();
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

// Written by rank 0 alone when several ranks train; with `tensorboard`,
// every record's numbers also go to a TensorBoard event file at its step.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, bool writer, std::optional<TensorBoardEvents> tensorboard)
      : path_(path), tensorboard_(std::move(tensorboard)) {
    if (!writer) return;
    out_.open(path, std::ios::app);
    if (!out_) fail("cannot create metrics file '{}'", path);
  }
  // A full disk would otherwise cut the file mid-line and let training go
  // on without metrics; the run stops instead, naming the file (its last
  // checkpoint is intact: checkpoints are written through checked paths).
  void write(const nlohmann::ordered_json& record) {
    if (!out_.is_open()) return;
    out_ << record.dump() << "\n" << std::flush;
    if (!out_) fail("cannot write metrics file '{}': {}", path_, std::strerror(errno));
    if (tensorboard_) tensorboard_->write_scalars(record.at("step").get<int64_t>(), scalars_of(record));
  }
  const std::string& path() const { return path_; }

 private:
  // The record's numbers but its step (booleans and strings are no curves).
  static std::vector<std::pair<std::string, double>> scalars_of(const nlohmann::ordered_json& record) {
    std::vector<std::pair<std::string, double>> scalars;
    for (const auto& [key, value] : record.items()) {
      if (key != "step" && value.is_number()) scalars.emplace_back(key, value.get<double>());
    }
    return scalars;
  }

  std::string path_;
  std::ofstream out_;
  std::optional<TensorBoardEvents> tensorboard_;
};

}  // namespace

TrainConfig with_absolute_paths(TrainConfig config) {
  for (std::string* path : {&config.data.train, &config.data.val, &config.run.init_from}) {
    if (!path->empty()) *path = fs::absolute(*path).lexically_normal().string();
  }
  return config;
}

std::string thread_count_change_note(const std::optional<int>& checkpoint_threads, int threads, int64_t step) {
  if (!checkpoint_threads || *checkpoint_threads == threads) return "";
  return fmt::format(
      "note: the checkpoint at step {} was trained with {} CPU threads and this run has {}; CPU kernels add in an "
      "order that depends on the thread count, so from here the losses will differ from an uninterrupted run's in "
      "the last digits. OMP_NUM_THREADS={} continues it bit for bit.",
      step, *checkpoint_threads, threads, *checkpoint_threads);
}

bool is_out_of_memory(const std::string& allocator_message) {
  // CUDA's caching allocator, and the CPU's DefaultCPUAllocator.
  return allocator_message.find("out of memory") != std::string::npos ||
         allocator_message.find("can't allocate memory") != std::string::npos;
}

namespace {

// What one optimizer step produced, before it is logged.
struct StepOutcome {
  int64_t steps_done = 0;
  AgreedStep agreed;
  double lr_multiplier = 0;
  bool updated = false;  // false: skipped (non-finite), weights unchanged
  std::vector<double> max_logits;  // QK-clip: each layer's largest attention logit this step
  int64_t clipped_heads = 0;       // QK-clip: heads rescaled after the step
  bool diagnosed = false;
  std::vector<std::pair<std::string, double>> one_step;  // Group Muon's one-step terms, when due
  std::vector<models::MoeStats> routing;                 // the last micro-batch's, for MoE models
};

// One training run, set up by the constructor and driven by run(); each
// step reads top to bottom: schedules, forward and backward, agreement
// across ranks, update (or the non-finite policy), log, then evaluation,
// checkpoint and stop as due.
class Run {
 public:
  Run(const TrainConfig& config, const TrainCallbacks& callbacks)
      : config_(config),
        callbacks_(callbacks),
        env_(distributed::dist_env_from_environment()),
        lead_(env_.rank == 0),
        device_(distributed::rank_device(config.run.device, env_,
                                         torch::cuda::is_available() ? torch::cuda::device_count() : 0)),
        autocast_(training_dtype(config.run.dtype, device_) == torch::kBFloat16),
        metrics_path_((fs::path(config.run.out_dir) / "metrics.jsonl").string()),
        metrics_csv_path_((fs::path(config.run.out_dir) / "metrics.csv").string()),
        tokens_per_step_(config.run.grad_accum * config.data.batch_size * config.data.seq_len * env_.world_size),
        flops_per_token_(models::model_stats(config.model).training_flops_per_token(config.data.seq_len)),
        adamw_schedule_(adamw_part_schedule(config)),
        muon_ns_config_(muon_options(config.optimizer).newton_schulz_config()) {
    torch::manual_seed(static_cast<uint64_t>(config.run.seed));
    // Work that names no GPU index (new CUDA tensors, NCCL's streams) goes to this rank's GPU.
    if (device_.is_cuda() && device_.has_index()) on_rank_device_.reset_device(device_);
    model_ = models::Transformer(config.model);
    if (!config.run.init_from.empty()) load_initial_weights(model_, config.run.init_from);
    model_->to(device_);
    if (config.optimizer.qk_clip_tau > 0) model_->track_max_logits(true);
    // The optimizer checks the model's weights against its options (Group Muon's
    // head groups among them), so a mismatch fails before the data is read.
    optimizer_.emplace(model_, config.optimizer, config.run.on_nonfinite);
    train_loader_.emplace(make_run_loader(config.data.train, config, config.data.shuffle, env_.rank, env_.world_size));
    // Validation batches are whole on every rank; evaluate() divides them.
    if (!config.data.val.empty()) val_loader_.emplace(make_run_loader(config.data.val, config, false));
    if (!config.run.hellaswag.empty()) load_choice_items();
  }

  // What the run would train on, as set up by the constructor.
  RunPlan plan() const {
    RunPlan plan;
    plan.steps = config_.run.steps;
    plan.tokens_per_step = tokens_per_step_;
    plan.flops = flops_per_token_ * static_cast<double>(tokens_per_step_) * static_cast<double>(plan.steps);
    for (const auto& parameter : model_->parameters()) plan.parameters += parameter.numel();
    if (const optim::Muon* muon = optimizer_->muon()) {
      for (const auto& group : muon->param_groups()) {
        for (const auto& parameter : group.params()) {
          plan.muon_parameters += parameter.numel();
          ++plan.muon_tensors;
        }
      }
    }
    const int64_t batch_tokens = config_.data.batch_size * config_.data.seq_len;
    plan.train_tokens_per_epoch = static_cast<int64_t>(train_loader_->batches_per_epoch()) * batch_tokens;
    if (val_loader_) {
      plan.val_split_tokens = static_cast<int64_t>(val_loader_->batches_per_epoch()) * batch_tokens;
      plan.val_tokens_per_evaluation =
          eval_batch_count(config_.run.eval_tokens, batch_tokens, val_loader_->batches_per_epoch()) * batch_tokens;
    }
    plan.hellaswag_items = static_cast<int64_t>(choice_items_.size());
    return plan;
  }

  TrainResult run(bool resume, const std::string& resume_from) {
    open_run_folder();
    begin(resume, resume_from);
    StopSignals signals;
    start_ = std::chrono::steady_clock::now();
    for (int64_t step = first_step_; step < config_.run.steps; ++step) {
      const StepOutcome outcome = train_step_naming_memory(step);
      log_step(outcome);
      result_.steps = outcome.steps_done;
      if (after_step(outcome.steps_done, outcome.agreed.stop)) return result_;
    }
    finish();
    return result_;
  }

 private:
  // Only once the constructor has read and checked everything, so that a
  // refused run leaves no empty run folder behind.
  void open_run_folder() {
    fs::create_directories(config_.run.out_dir);
    if (lead_) folder_lock_.emplace(config_.run.out_dir);
    sync_ = make_step_sync(env_, config_, device_, model_, *optimizer_);
    peak_ = peak_flops_of_run(config_, device_);
    result_.rank = env_.rank;
    result_.world_size = env_.world_size;
  }

  // Resumes from the newest checkpoint or starts the metrics afresh, then
  // writes the resolved config.
  void begin(bool resume, const std::string& resume_from) {
    if (!resume_from.empty()) {
      if (!fs::is_regular_file(fs::path(resume_from) / "state.json")) {
        fail("--resume-from {}: not a complete checkpoint folder (no state.json)", resume_from);
      }
      resume = true;
    }
    if (!resume && lead_) refuse_an_older_run();
    if (resume) {
      std::optional<std::string> checkpoint =
          resume_from.empty() ? newest_checkpoint(config_.run.out_dir) : std::optional<std::string>(resume_from);
      if (!checkpoint) fail("--resume: no complete checkpoint under '{}/checkpoints'", config_.run.out_dir);
      CheckpointState state = load_checkpoint(*checkpoint, config_, model_, *optimizer_, env_.world_size);
      const bool stopped_before_its_weights =
          state.step == config_.run.steps && !fs::exists(fs::path(config_.run.out_dir) / "model.safetensors");
      if (state.step >= config_.run.steps && !stopped_before_its_weights) {
        fail("--resume: the run in '{}' already finished ({} of run.steps = {} done, checkpoint {}); raise "
             "run.steps to train further",
             config_.run.out_dir, state.step, config_.run.steps, *checkpoint);
      }
      train_loader_->restore(state.cursor);
      first_step_ = result_.resumed_from = state.step;
      note_thread_count_change(state);
      if (lead_) truncate_metrics(metrics_path_, first_step_);
      // Stopped after its last checkpoint (its final evaluation logged) and
      // before its final weights: no step is left, run() writes them.
      if (stopped_before_its_weights) recall_final_losses();
    } else if (lead_) {
      std::ofstream(metrics_path_, std::ios::trunc);
    }
    // Only now, so a refused resume leaves the previous run's config alone.
    if (lead_) {
      write_text_file_atomically((fs::path(config_.run.out_dir) / "config.toml").string(),
                                 format_train_config(with_absolute_paths(config_)));
    }
    sync_->start(resume);
    std::optional<TensorBoardEvents> tensorboard;
    if (config_.run.tensorboard && lead_) {
      tensorboard.emplace((fs::path(config_.run.out_dir) / "tensorboard").string(),
                          resume ? std::optional<int64_t>(first_step_) : std::nullopt);
    }
    metrics_.emplace(metrics_path_, lead_, std::move(tensorboard));
    result_.metrics_path = metrics_->path();
  }

  // The last step's train loss and validation loss, from the metrics the
  // run logged, for a run that has no step left to take.
  void recall_final_losses() {
    result_.steps = first_step_;
    const analysis::LossCurves curves = read_loss_curves(metrics_path_);
    const auto at_last_step = [&](const std::vector<analysis::LossPoint>& curve, double& loss) {
      for (const analysis::LossPoint& point : curve) {
        if (point.step == static_cast<double>(first_step_)) loss = point.loss;
      }
    };
    at_last_step(curves.train, result_.final_train_loss);
    at_last_step(curves.validation, result_.final_val_loss);
  }

  void note_thread_count_change(const CheckpointState& state) const {
    if (!lead_ || !callbacks_.on_note || !torch::Device(config_.run.device).is_cpu()) return;
    const std::string note = thread_count_change_note(state.intra_op_threads, at::get_num_threads(), state.step);
    if (!note.empty()) callbacks_.on_note(note);
  }

  // A fresh run in a folder that holds another run's checkpoints or final
  // weights would mix the two: its checkpoints pruned against the old ones,
  // a later --resume continuing the old run, config.toml describing neither.
  void refuse_an_older_run() const {
    const fs::path weights = fs::path(config_.run.out_dir) / "model.safetensors";
    std::optional<std::string> checkpoint = newest_checkpoint(config_.run.out_dir);
    if (!checkpoint && !fs::exists(weights)) return;
    fail("run folder '{}' already holds a run ({}): continue it with --resume, start over with --move-aside "
         "(renames the folder to '{}.old-N'), or give another run.out_dir",
         config_.run.out_dir, checkpoint ? *checkpoint : weights.string(), config_.run.out_dir);
  }

  // Sets this step's learning rates and (with a ramp) Muon's momentum;
  // returns the main schedule's lr multiplier.
  double set_schedules(int64_t step) {
    const double multiplier = schedule_multiplier(config_.schedule, step, config_.run.steps);
    optimizer_->set_lr_multipliers(multiplier, schedule_multiplier(adamw_schedule_, step, config_.run.steps));
    if (config_.momentum_start >= 0) {
      optimizer_->set_muon_momentum(
          ramp_value({config_.momentum_start, config_.optimizer.momentum, config_.momentum_warmup_steps}, step));
    }
    return multiplier;
  }

  // Forward and backward over grad_accum micro-batches; returns the loss of
  // the step (the mean of the micro-batches'). The losses are summed on the
  // device, in float64 as a host sum of their values would be, and read
  // once: a read per micro-batch would make the host wait for each backward
  // before it launches the next forward.
  double forward_backward(std::vector<models::MoeStats>& routing) {
    torch::Tensor loss = torch::zeros({}, torch::dtype(torch::kFloat64).device(device_));
    for (int64_t micro = 0; micro < config_.run.grad_accum; ++micro) {
      const data::Batch batch = data::to_device(train_loader_->next(), device_);
      torch::Tensor micro_loss;
      {
        // Forward only: backward runs each op in the dtype its forward used.
        compat::Autocast autocast(device_, autocast_, torch::kBFloat16);
        auto output = model_->forward(batch.inputs);
        micro_loss = models::training_loss(output, batch.targets) / config_.run.grad_accum;
        routing = output.moe;
      }
      sync_->before_backward(micro == config_.run.grad_accum - 1);
      micro_loss.backward();
      loss += micro_loss.detach().to(torch::kFloat64);
    }
    return loss.item<double>();
  }

  // An allocator's "out of memory" becomes an error naming the step, the
  // batch and the settings that shrink it.
  StepOutcome train_step_naming_memory(int64_t step) {
    try {
      return train_step(step);
    } catch (const c10::Error& error) {
      const std::string what = error.what_without_backtrace();
      if (!is_out_of_memory(what)) throw;
      fail("step {}: out of memory on {} with micro-batches of {} x {} tokens (data.batch_size x data.seq_len, "
           "run.grad_accum = {}): lower data.batch_size and raise run.grad_accum by the same factor to keep the "
           "batch, or use a smaller model. The allocator said: {}",
           step + 1, device_.str(), config_.data.batch_size, config_.data.seq_len, config_.run.grad_accum, what);
    }
  }

  StepOutcome train_step(int64_t step) {
    StepOutcome outcome;
    outcome.steps_done = step + 1;
    outcome.lr_multiplier = set_schedules(step);
    optimizer_->zero_grad();
    const double loss = forward_backward(outcome.routing);
    const bool one_step_due = due(config_.run.one_step_every, outcome.steps_done);
    outcome.agreed = sync_->agree(outcome.steps_done, loss, stop_requested, /*everywhere=*/one_step_due);
    if (!std::isfinite(outcome.agreed.loss) || !std::isfinite(outcome.agreed.grad_norm)) {
      if (config_.optimizer.qk_clip_tau > 0) model_->qk_clip(std::numeric_limits<double>::infinity());  // forgets
      handle_nonfinite(outcome);
      return outcome;
    }
    outcome.diagnosed = due(config_.run.diagnostics_every, outcome.steps_done);
    // From the gradients the step is about to use (clipped, as Muon sees them).
    if (one_step_due) {
      outcome.one_step = one_step_metrics(model_->tagged_parameters(), config_.optimizer, one_step_group_sizes(config_),
                                          muon_ns_config_, outcome.steps_done);
    }
    // A finite global norm (checked above) means finite gradients, so the
    // optimizers need not read every gradient again to check them.
    optimizer_->step(outcome.diagnosed, [this] { sync_->after_update(); }, outcome.agreed.grad_norm_measured);
    outcome.updated = true;
    if (config_.optimizer.qk_clip_tau > 0) clip_query_key_logits(outcome);
    return outcome;
  }

  // QK-clip after the step, from the logits this step's forwards saw on
  // every rank (the per-head maxima are combined first, so all ranks clip
  // alike and their weights stay identical).
  void clip_query_key_logits(StepOutcome& outcome) {
    const double tau = config_.optimizer.qk_clip_tau;
    const auto over_ranks = [this](torch::Tensor& max_logits) { sync_->max_over_ranks(max_logits); };
    for (const torch::Tensor& layer : model_->qk_clip(tau, over_ranks)) {
      if (!layer.defined()) continue;
      outcome.max_logits.push_back(layer.max().item<double>());
      outcome.clipped_heads += layer.gt(tau).sum().item<int64_t>();
    }
  }

  // run.on_nonfinite: "stop" fails naming the step and the last good
  // checkpoint; "skip" leaves weights and optimizer state as they were.
  // A skip counts against run.max_skipped_steps.
  void handle_nonfinite(const StepOutcome& outcome) {
    const double loss = outcome.agreed.loss, grad_norm = outcome.agreed.grad_norm;
    const std::string what = fmt::format("the {} is {}", std::isfinite(loss) ? "gradient norm" : "loss",
                                         nonfinite_name(std::isfinite(loss) ? grad_norm : loss));
    if (config_.run.on_nonfinite == optim::NonFinitePolicy::kError) {
      stop_on_nonfinite(outcome.steps_done, what + "; stopped without updating the weights",
                        "run.on_nonfinite = \"skip\" skips such steps instead");
    }
    ++result_.skipped_steps;
    const int64_t limit = config_.run.max_skipped_steps;
    if (limit >= 0 && result_.skipped_steps > limit) {
      stop_on_nonfinite(outcome.steps_done,
                        fmt::format("{}, and {} steps were skipped, more than run.max_skipped_steps = {}", what,
                                    result_.skipped_steps, limit),
                        "Lower the learning rate or raise run.max_skipped_steps (-1: no limit)");
    }
  }

  static std::string nonfinite_name(double value) {
    if (std::isnan(value)) return "NaN (non-finite)";
    return fmt::format("{} (non-finite)", value);
  }

  // Fails naming the step, what went wrong, the last checkpoint and `advice`.
  [[noreturn]] void stop_on_nonfinite(int64_t step, const std::string& what, const std::string& advice) {
    std::optional<std::string> last_good = newest_checkpoint(config_.run.out_dir);
    if (lead_) write_metrics_csv(metrics_path_, metrics_csv_path_);
    fail("step {}: {}. Last good checkpoint: {}. {}", step, what,
         last_good ? *last_good + " (continue from it with --resume)" : "none yet (see run.checkpoint_every)", advice);
  }

  StepReport report_of(const StepOutcome& outcome) const {
    StepReport report;
    report.step = outcome.steps_done;
    report.total_steps = config_.run.steps;
    report.loss = outcome.agreed.loss;
    report.lr_multiplier = outcome.lr_multiplier;
    report.lrs = optimizer_->current_lrs();
    report.grad_norm = outcome.agreed.grad_norm;
    report.tokens = report.step * tokens_per_step_;
    report.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    report.tokens_per_second = (report.step - first_step_) * tokens_per_step_ / std::max(report.elapsed_seconds, 1e-9);
    if (peak_) report.mfu = report.tokens_per_second * flops_per_token_ / *peak_;
    if (!outcome.routing.empty()) report.routing = models::describe_routing(outcome.routing);
    return report;
  }

  // The step's metrics record (metrics.jsonl) and progress callback.
  void log_step(const StepOutcome& outcome) {
    nlohmann::ordered_json record = {{"step", outcome.steps_done}};
    if (!outcome.updated) {
      record.update({{"loss", outcome.agreed.loss}, {"grad_norm", outcome.agreed.grad_norm}, {"skipped", true}});
      metrics_->write(record);
      return;
    }
    const StepReport report = report_of(outcome);
    record.update({{"loss", report.loss}, {"lr_multiplier", report.lr_multiplier}, {"grad_norm", report.grad_norm},
                   {"tokens", report.tokens}, {"elapsed_s", report.elapsed_seconds}});
    for (const auto& [name, lr] : optimizer_->current_lrs()) record["lr_" + name] = lr;
    if (report.mfu >= 0) record["mfu"] = report.mfu;
    if (outcome.diagnosed) {
      for (const auto& [name, rms] : optimizer_->last_update_rms()) record["update_rms_" + name] = rms;
    }
    for (const auto& [name, value] : outcome.one_step) record[name] = value;
    if (!outcome.max_logits.empty()) {
      record["max_logit"] = *std::max_element(outcome.max_logits.begin(), outcome.max_logits.end());
      for (size_t i = 0; i < outcome.max_logits.size(); ++i) record[fmt::format("max_logit_l{}", i)] = outcome.max_logits[i];
      record["qk_clipped_heads"] = outcome.clipped_heads;
    }
    add_routing_metrics(record, outcome.routing);
    metrics_->write(record);
    if (callbacks_.on_step && lead_) callbacks_.on_step(report);
    result_.final_train_loss = report.loss;
  }

  // Evaluation and checkpoint as due; on a stop request, a checkpoint and
  // the end of the run (returns true).
  bool after_step(int64_t steps_done, bool stop) {
    const bool last = steps_done == config_.run.steps;
    if (last || due(config_.run.eval_every, steps_done)) evaluate_now(steps_done);
    if (last || due(config_.run.checkpoint_every, steps_done)) checkpoint_now(steps_done);
    if (!stop || last) return false;
    checkpoint_now(steps_done);
    if (lead_) write_metrics_csv(metrics_path_, metrics_csv_path_);
    result_.interrupted = true;
    return true;
  }

  // The items are read and the tokenizer loaded once, at the start, so that
  // a bad file fails before the first step.
  void load_choice_items() {
    choice_items_ = read_multiple_choice_items(config_.run.hellaswag, config_.run.hellaswag_items);
    choice_tokenizer_ = data::load_tokenizer(config_.data.tokenizer);
    if (choice_tokenizer_->vocab_size() > config_.model.vocab_size) {
      fail("run.hellaswag: data.tokenizer '{}' has {} ids, more than the model's vocab_size {}; set data.tokenizer "
           "to the tokenizer the data was prepared with",
           config_.data.tokenizer, choice_tokenizer_->vocab_size(), config_.model.vocab_size);
    }
  }

  void evaluate_now(int64_t step) {
    if (!val_loader_ && choice_items_.empty()) return;
    EvalReport report;
    report.step = step;
    nlohmann::ordered_json record{{"step", step}};
    if (val_loader_) {
      std::function<void(int64_t, int64_t)> progress;
      if (callbacks_.on_eval_progress && lead_) {
        progress = [&](int64_t done, int64_t batches) { callbacks_.on_eval_progress(step, done, batches); };
      }
      report.val_loss = evaluate(model_, *val_loader_, config_, device_, report.tokens, *sync_, progress);
      result_.final_val_loss = *report.val_loss;
      record["val_loss"] = *report.val_loss;
      record["val_tokens"] = report.tokens;
    }
    if (!choice_items_.empty()) {
      const MultipleChoiceResult choices = evaluate_choices();
      report.hellaswag_items = choices.items;
      report.hellaswag_acc_norm = choices.accuracy_norm();
      report.hellaswag_acc = choices.accuracy();
      record["hellaswag_acc_norm"] = *report.hellaswag_acc_norm;
      record["hellaswag_acc"] = *report.hellaswag_acc;
      record["hellaswag_items"] = choices.items;
    }
    record["tokens"] = step * tokens_per_step_;
    metrics_->write(record);
    if (callbacks_.on_eval && lead_) callbacks_.on_eval(report);
    // Finite training steps can still leave weights whose logits overflow;
    // such weights are neither checkpointed nor saved.
    if (report.val_loss && !std::isfinite(*report.val_loss)) {
      stop_on_nonfinite(step, "the validation loss is " + nonfinite_name(*report.val_loss),
                        "Lower the learning rate or run.clip_grad_norm");
    }
  }

  // Each rank scores every world_size-th item, as it evaluates validation
  // batches, and the counts are added up.
  MultipleChoiceResult evaluate_choices() {
    MultipleChoiceOptions options;
    options.bf16 = training_dtype(config_.run.dtype, device_) == torch::kBFloat16;  // as the training forwards
    options.computes = [this](int64_t index) { return sync_->evaluates(index); };
    const MultipleChoiceResult local =
        evaluate_multiple_choice(model_, *choice_tokenizer_, choice_items_, device_, options);
    const std::vector<double> counts = sync_->totals({static_cast<double>(local.items),
                                                      static_cast<double>(local.correct),
                                                      static_cast<double>(local.correct_norm)});
    MultipleChoiceResult total;
    total.items = std::llround(counts[0]);
    total.correct = std::llround(counts[1]);
    total.correct_norm = std::llround(counts[2]);
    return total;
  }

  // Rank 0 writes what every rank holds alike; under sharded optimizer
  // state each rank writes its own share beside it, so none gathers it all.
  void checkpoint_now(int64_t steps_done) {
    const CheckpointState state{steps_done, train_loader_->cursor(), env_.world_size};
    const auto barrier = [this] { sync_->barrier(); };
    if (env_.world_size > 1 && optimizer_->sharded()) {
      result_.checkpoint = save_sharded_checkpoint(config_, state, model_, *optimizer_, env_.rank, barrier);
      return;
    }
    if (lead_) result_.checkpoint = save_checkpoint(config_, state, model_, *optimizer_);
    barrier();  // no rank runs ahead of (or exits before) the checkpoint being written
  }

  // Rank 0: metrics.csv and the final weights.
  void finish() {
    if (!lead_) return;
    write_metrics_csv(metrics_path_, metrics_csv_path_);
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    for (const auto& item : model_->named_parameters()) weights.emplace_back(item.key(), item.value());
    result_.weights_path = (fs::path(config_.run.out_dir) / "model.safetensors").string();
    save_safetensors(result_.weights_path, weights, {{"format", "pt"}, {"muonlab_preset", config_.model_preset}});
  }

  // Every `every` steps (0: never).
  static bool due(int64_t every, int64_t steps_done) { return every > 0 && steps_done % every == 0; }

  const TrainConfig& config_;
  const TrainCallbacks& callbacks_;
  const distributed::DistEnv env_;
  const bool lead_;  // rank 0: writes metrics, checkpoints and weights
  const torch::Device device_;
  c10::OptionalDeviceGuard on_rank_device_;
  const bool autocast_;  // the forward pass in bf16 (run.dtype resolved on device_)
  const std::string metrics_path_, metrics_csv_path_;
  const int64_t tokens_per_step_;
  const double flops_per_token_;
  const ScheduleConfig adamw_schedule_;
  const optim::NewtonSchulzConfig muon_ns_config_;
  std::optional<FolderLock> folder_lock_;  // rank 0's, held until every file is written
  std::optional<double> peak_;
  models::Transformer model_{nullptr};
  std::optional<data::TokenLoader> train_loader_, val_loader_;
  std::vector<MultipleChoiceItem> choice_items_;  // run.hellaswag's
  std::unique_ptr<data::Tokenizer> choice_tokenizer_;
  std::optional<TrainOptimizer> optimizer_;
  std::unique_ptr<StepSync> sync_;
  std::optional<MetricsLog> metrics_;
  TrainResult result_;
  int64_t first_step_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

TrainResult train(const TrainConfig& config, const TrainCallbacks& callbacks, bool resume,
                  const std::string& resume_from) {
  return Run(config, callbacks).run(resume, resume_from);
}

RunPlan plan_run(const TrainConfig& config) {
  if (distributed::dist_env_from_environment().distributed()) {
    fail("a run's plan is made in one process: run it without a launcher (RANK and WORLD_SIZE are set)");
  }
  return Run(config, {}).plan();
}

}  // namespace muonlab::training
