#include "muonlab/bench/train_bench.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "muonlab/bench/bench_values.h"
#include "muonlab/bench/model_bench.h"
#include "muonlab/bench/nanogpt_peer.h"
#include "muonlab/bench/timing.h"
#include "muonlab/core/allocator_settings.h"
#include "muonlab/core/busy_load.h"
#include "muonlab/core/cpu_load.h"
#include "muonlab/core/device_peak_flops.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/threads.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/models/model_stats.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::bench {

namespace {

constexpr int64_t kFp32Bytes = 4;

// ---- configuration ------------------------------------------------------------

std::vector<std::string> presets_of(const TrainBenchConfig& config) {
  return config.presets.empty() ? default_train_bench_presets(config.device) : config.presets;
}

// The preset with every --set applied; errors name the option at fault.
models::ModelConfig bench_model_config(const std::string& preset, const std::vector<std::string>& overrides) {
  models::ModelConfig c;
  try {
    c = models::model_preset(preset);
  } catch (const Error& e) {
    fail("--presets {}: {}", preset, e.what());
  }
  for (const auto& assignment : overrides) {
    try {
      models::apply_override(c, assignment);
    } catch (const Error& e) {
      fail("--set {}: {}", assignment, e.what());
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail("--presets {} with --set {}: {}", preset, fmt::join(overrides, " --set "), e.what());
  }
  return c;
}

// Everything is checked before the first preset runs, so a typo in the last
// preset does not cost the minutes of the ones before it.
void check_config(const TrainBenchConfig& config) {
  check_positive("--batch", static_cast<double>(config.batch));
  check_positive("--seq-len", static_cast<double>(config.seq_len));
  check_positive("--steps", config.steps);
  check_positive("--rounds", config.rounds);
  check_non_negative("--warmup", config.warmup);
  check_positive("--max-gib", config.max_gib);
  check_non_negative("--peak-tflops", config.peak_tflops);
  check_non_negative("clip_grad_norm", config.clip_grad_norm);
  check_non_negative("--background-load", config.background_load);
  for (const auto& preset : presets_of(config)) {
    const auto c = bench_model_config(preset, config.overrides);
    if (config.seq_len > c.block_size) {
      fail("--seq-len {}: longer than {}'s block_size {}", config.seq_len, preset, c.block_size);
    }
  }
}

bool uses_autocast(const TrainBenchConfig& config) {
  return training::training_dtype(config.dtype, config.device) == torch::kBFloat16;
}

// The denominator of MFU, as the trainer picks it: --peak-tflops, else the
// device's entry in the peak table (for the matmul dtype).
void resolve_peak(const TrainBenchConfig& config, TrainBenchReport& report) {
  if (config.peak_tflops > 0) {
    report.peak_flops = config.peak_tflops * 1e12;
    report.peak_source = "--peak-tflops";
    return;
  }
  const auto matmul_dtype = uses_autocast(config) ? torch::kBFloat16 : torch::kFloat32;
  report.peak_flops = peak_flops(report.device_name, matmul_dtype);
  if (report.peak_flops) {
    report.peak_source = fmt::format("{} peak of {}", short_dtype_name(matmul_dtype), report.device_name);
  }
}

// ---- timing -------------------------------------------------------------------

// One training step as trainer.cpp runs it (without data loading, which the
// loader does on the CPU between steps), split where the optimizer begins.
class TrainStep {
 public:
  TrainStep(const models::ModelConfig& c, const TrainBenchConfig& config, const std::string& optimizer_name)
      : config_(config), autocast_(uses_autocast(config)) {
    torch::manual_seed(config.seed);  // both optimizers start from the same weights and batch
    model_ = models::Transformer(c);
    model_->to(config.device);
    model_->train();
    parameters_ = model_->parameters();
    const auto token_options = torch::dtype(torch::kInt64).device(config.device);
    inputs_ = torch::randint(c.vocab_size, {config.batch, config.seq_len}, token_options);
    targets_ = torch::randint(c.vocab_size, {config.batch, config.seq_len}, token_options);
    optimizer_ = std::make_unique<training::TrainOptimizer>(model_, settings_for(optimizer_name, config.cuda_graph));
  }

  void forward_backward() {
    optimizer_->zero_grad();
    ++steps_run_;
    torch::Tensor loss;
    {
      // Forward only, as the trainer: backward runs each op in its forward's dtype.
      compat::Autocast autocast(config_.device, autocast_, torch::kBFloat16);
      loss = models::training_loss(model_->forward(inputs_), targets_);
    }
    loss.backward();
    gradients_known_finite_ = false;
    if (config_.clip_grad_norm > 0) {
      // As the trainer: a finite global norm spares the optimizers their check.
      gradients_known_finite_ = std::isfinite(torch::nn::utils::clip_grad_norm_(parameters_, config_.clip_grad_norm));
    }
  }

  void optimizer_step() { optimizer_->step(/*measure_updates=*/false, nullptr, gradients_known_finite_); }
  int steps_run() const { return steps_run_; }

 private:
  // The trainer's own optimizer with the bundled configs' recipe (Muon lr
  // 0.02, no weight decay; the rest [optimizer]'s defaults), so the timings
  // include whatever TrainOptimizer adds around the optimizers' step. `lr`
  // is Muon's unless the run is AdamW alone: AdamW gets its own lr, as an
  // AdamW run would (the lr does not change the time of a step).
  static training::OptimizerSettings settings_for(const std::string& name, bool cuda_graph) {
    training::OptimizerSettings settings;
    settings.name = name;
    settings.cuda_graph = cuda_graph;
    settings.lr = 0.02;
    settings.weight_decay = 0.0;
    if (name == kAdamWName) settings.lr = settings.adamw_lr;
    return settings;
  }

  const TrainBenchConfig& config_;
  bool autocast_;
  models::Transformer model_{nullptr};
  std::vector<torch::Tensor> parameters_;
  torch::Tensor inputs_, targets_;
  std::unique_ptr<training::TrainOptimizer> optimizer_;
  bool gradients_known_finite_ = false;
  int steps_run_ = 0;
};

struct PhaseTimings {
  Timing forward_backward;
  Timing optimizer;
  Timing step;  // per-step sums of the two
  ProcessUsage usage;  // over all timed steps
};

// time_runs times one closure; here each step is split in two phases, each
// closed by a sync so queued GPU work lands in the phase that queued it.
PhaseTimings time_phases(TrainStep& step, const torch::Device& device, int warmup, int steps) {
  for (int i = 0; i < warmup; ++i) {
    step.forward_backward();
    step.optimizer_step();
  }
  synchronize(device);
  PhaseTimings timings;
  const ProcessUsage before = ProcessUsage::now();
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step.forward_backward();
    synchronize(device);
    const auto middle = std::chrono::steady_clock::now();
    step.optimizer_step();
    synchronize(device);
    const auto stop = std::chrono::steady_clock::now();
    timings.forward_backward.seconds.push_back(seconds_between(start, middle));
    timings.optimizer.seconds.push_back(seconds_between(middle, stop));
    timings.step.seconds.push_back(seconds_between(start, stop));
  }
  timings.usage = ProcessUsage::now() - before;
  return timings;
}

OptimizerStepTiming time_optimizer(const models::ModelConfig& c, const TrainBenchConfig& config,
                                   const std::string& optimizer_name, double flops_per_token,
                                   std::optional<double> peak) {
  PhaseTimings timings;
  OptimizerStepTiming timing;
  {
    TrainStep step(c, config, optimizer_name);  // freed before the next optimizer builds its model
    timings = time_phases(step, config.device, config.warmup, config.steps);
    timing.steps_run = step.steps_run();
  }
  timing.optimizer = optimizer_name;
  timing.forward_backward_seconds = timings.forward_backward.median();
  timing.optimizer_seconds = timings.optimizer.median();
  timing.step_seconds = timings.step.median();
  timing.tokens_per_second = static_cast<double>(config.batch * config.seq_len) / timing.step_seconds;
  timing.minor_faults_per_step = static_cast<double>(timings.usage.minor_faults) / config.steps;
  timing.system_seconds_per_step = timings.usage.system_seconds / config.steps;
  timing.mfu = model_flops_utilization(timing.tokens_per_second, flops_per_token, peak);
  return timing;
}

// One run of the peer, or nullopt once it has failed (the failure is noted in
// the row; muonlab's own timings stand).
std::optional<double> time_peer(const models::ModelConfig& c, const TrainBenchConfig& config, const PeerSetup& setup,
                                const std::string& optimizer_name, TrainBenchRow& row) {
  PeerRequest request;
  request.batch = config.batch;
  request.seq_len = config.seq_len;
  request.dtype = uses_autocast(config) ? "bf16" : "fp32";
  request.warmup = config.warmup;
  request.steps = config.steps;
  request.threads = config.device.is_cpu() ? at::get_num_threads() : 0;
  request.device = config.device.is_cuda() ? "cuda" : "cpu";
  request.optimizer = optimizer_name;
  PeerResult result;
  try {
    result = run_nanogpt_peer(setup, c, request);
  } catch (const std::exception& error) {
    row.peer_note = fmt::format("peer failed: {}", error.what());
    return std::nullopt;
  }
  if (result.parameters != row.parameters) {  // a ratio of two different models would mean nothing
    fail("peer {}: its model has {} parameters, muonlab's {} has {}", setup.script, result.parameters, row.preset,
         row.parameters);
  }
  return result.tokens_per_second;
}

// The round whose tokens/s is the median of the rounds' (the lower of the
// middle two for an even count): one real measurement, all of its columns
// from the same run.
OptimizerStepTiming median_round(std::vector<OptimizerStepTiming> rounds) {
  std::sort(rounds.begin(), rounds.end(), [](const OptimizerStepTiming& a, const OptimizerStepTiming& b) {
    return a.tokens_per_second < b.tokens_per_second;
  });
  return rounds[(rounds.size() - 1) / 2];
}

TrainBenchRow run_preset(const std::string& preset, const TrainBenchConfig& config, std::optional<double> peak,
                         const std::optional<PeerSetup>& peer) {
  const auto c = bench_model_config(preset, config.overrides);
  const auto stats = models::model_stats(c);
  TrainBenchRow row;
  row.preset = preset;
  row.parameters = stats.parameters;
  row.estimated_gib = estimated_train_step_gib(c, config.batch, config.seq_len);
  if (row.estimated_gib > config.max_gib) {
    row.skipped = fmt::format("estimated {:.3g} GiB > --max-gib {}", row.estimated_gib, config.max_gib);
    return row;
  }
  const double flops_per_token = stats.training_flops_per_token(config.seq_len);
  row.gflop_per_token = flops_per_token / 1e9;
  bool run_peer = peer.has_value();
  if (run_peer) {
    const std::string difference = nanogpt_peer_difference(c);
    if (!difference.empty()) row.peer_note = "not a nanoGPT block: " + difference;
    run_peer = difference.empty();
  }
  // The peer's run of one optimizer, kept in `rounds`; after a failure the peer is not run again.
  const auto time_peer_into = [&](const char* optimizer_name, std::vector<double>& rounds) {
    const auto tokens_per_second = run_peer ? time_peer(c, config, *peer, optimizer_name, row) : std::nullopt;
    if (tokens_per_second) rounds.push_back(*tokens_per_second);
    run_peer = tokens_per_second.has_value();
  };
  for (int round = 0; round < config.rounds; ++round) {
    // muonlab's AdamW, its Muon, the peer's AdamW, its Muon; backwards in odd rounds.
    std::vector<std::function<void()>> runs = {
        [&] { row.adamw_rounds.push_back(time_optimizer(c, config, kAdamWName, flops_per_token, peak)); },
        [&] { row.muon_rounds.push_back(time_optimizer(c, config, kMuonName, flops_per_token, peak)); },
        [&] { time_peer_into(kAdamWName, row.peer_adamw_rounds); },
        [&] { time_peer_into(kMuonName, row.peer_muon_rounds); }};
    if (round % 2 == 1) std::reverse(runs.begin(), runs.end());
    for (const auto& run : runs) run();
  }
  row.adamw = median_round(row.adamw_rounds);
  row.muon = median_round(row.muon_rounds);
  row.muon_vs_adamw = compare_muon_with_adamw(row.adamw, row.muon);
  // Ratios are paired by round, so the peer counts only where it ran in every one.
  const auto complete = [&](const std::vector<double>& peer_rounds) {
    return static_cast<int>(peer_rounds.size()) == config.rounds;
  };
  if (complete(row.peer_adamw_rounds) && complete(row.peer_muon_rounds)) {
    row.peer_adamw_tokens_per_second = median_of_values(row.peer_adamw_rounds);
    row.peer_muon_tokens_per_second = median_of_values(row.peer_muon_rounds);
  } else {
    row.peer_adamw_rounds.clear();
    row.peer_muon_rounds.clear();
  }
  return row;
}

// ---- output -------------------------------------------------------------------

std::string format_mfu(const std::optional<double>& mfu) {
  return mfu ? fmt::format("{:.2f}%", 100.0 * *mfu) : "n/a";
}

std::string format_header(const TrainBenchReport& report) {
  std::string out = fmt::format(
      "training step, AdamW vs Muon + AdamW hybrid (the trainer's optimizer), device {}, {}, "
      "batch {} x {} tokens, median of {} timed step{} after {} warm-up\n",
      report.device, report.dtype, report.batch, report.seq_len, report.steps, report.steps == 1 ? "" : "s",
      report.warmup);
  if (report.rounds > 1) {
    out += fmt::format("{} rounds per preset, in alternating order; each side's round of median tokens/s is shown\n",
                       report.rounds);
  }
  if (!report.overrides.empty()) out += fmt::format("every preset with --set {}\n", fmt::join(report.overrides, " --set "));
  if (report.background_load > 0) {
    out += fmt::format("background load: {} busy-loop process{} on the cores throughout, beside muonlab's runs and the "
                       "peer's\n",
                       report.background_load, report.background_load == 1 ? "" : "es");
  }
  if (report.peak_flops) {
    out += fmt::format("MFU against {:.4g} TFLOP/s ({})\n", *report.peak_flops / 1e12, report.peak_source);
  } else {
    out += fmt::format("MFU n/a: no peak FLOP/s known for {}; give --peak-tflops\n", report.device_name);
  }
  return out;
}

std::string format_timing_row(const std::string& preset, const std::string& params, const OptimizerStepTiming& t) {
  return fmt::format("{:<16} {:>8} {:<9} {:>11.1f} {:>10.1f} {:>10.1f} {:>10.0f} {:>8} {:>8.1f}% {:>10} {:>8.1f}\n",
                     preset, params, t.optimizer, t.forward_backward_seconds * 1e3, t.optimizer_seconds * 1e3,
                     t.step_seconds * 1e3, t.tokens_per_second, format_mfu(t.mfu),
                     100.0 * t.optimizer_seconds / t.step_seconds, format_count(static_cast<int64_t>(t.minor_faults_per_step)),
                     t.system_seconds_per_step * 1e3);
}

std::string format_timing_table(const TrainBenchReport& report) {
  std::string out = fmt::format("{:<16} {:>8} {:<9} {:>11} {:>10} {:>10} {:>10} {:>8} {:>9} {:>10} {:>8}\n", "preset",
                                "params", "optimizer", "fwd+bwd ms", "opt ms", "step ms", "tokens/s", "MFU", "opt/step",
                                "faults", "sys ms");
  for (const auto& row : report.rows) {
    if (!row.skipped.empty()) {
      out += fmt::format("{:<16} {:>8}   skipped: {}\n", row.preset, format_count(row.parameters), row.skipped);
      continue;
    }
    out += format_timing_row(row.preset, format_count(row.parameters), row.adamw);
    out += format_timing_row("", "", row.muon);
  }
  return out;
}

std::string format_ratio_table(const TrainBenchReport& report) {
  std::string out = "Muon vs AdamW in this process (muon / adamw)\n";
  out += fmt::format("{:<16} {:>10} {:>10} {:>10} {:>24}\n", "preset", "step", "opt step", "tokens/s",
                     "Muon extra / AdamW step");
  for (const auto& row : report.rows) {
    if (!row.skipped.empty()) continue;
    const auto& r = row.muon_vs_adamw;
    out += fmt::format("{:<16} {:>9.2f}x {:>9.2f}x {:>9.2f}x {:>23.1f}%\n", row.preset, r.step_ratio,
                       r.optimizer_ratio, r.tokens_per_second_ratio, 100.0 * r.overhead_fraction);
  }
  return out;
}

std::string format_peer_table(const TrainBenchReport& report) {
  std::string out = fmt::format("muonlab vs the nanoGPT-style PyTorch peer, same model, batch, precision and threads "
                                "(muonlab / peer tokens/s)\npeer: {}\n",
                                report.peer);
  bool any = false;
  for (const auto& row : report.rows) {
    if (!row.skipped.empty()) continue;
    if (!row.peer_adamw_tokens_per_second) {
      if (!row.peer_note.empty()) out += fmt::format("{:<16} {}\n", row.preset, row.peer_note);
      continue;
    }
    if (!any) out += fmt::format("{:<16} {:>22} {:>22}\n", "preset", "adamw (peer tok/s)", "muon (peer tok/s)");
    any = true;
    const double adamw_peer = *row.peer_adamw_tokens_per_second, muon_peer = *row.peer_muon_tokens_per_second;
    out += fmt::format("{:<16} {:>9.2f}x ({:>8.0f}) {:>9.2f}x ({:>8.0f})\n", row.preset,
                       row.adamw.tokens_per_second / adamw_peer, adamw_peer, row.muon.tokens_per_second / muon_peer,
                       muon_peer);
  }
  if (report.rounds < 2) return out;
  out += fmt::format("muonlab / peer per round, paired ({} rounds): median [95% bootstrap CI], range, rounds at 1x "
                     "or above\n",
                     report.rounds);
  const auto describe = [](const std::vector<OptimizerStepTiming>& ours, const std::vector<double>& theirs) {
    std::vector<double> tokens_per_second;
    for (const auto& timing : ours) tokens_per_second.push_back(timing.tokens_per_second);
    const PeerRatioSummary summary = summarize_peer_ratios(tokens_per_second, theirs);
    const RoundsSummary& r = summary.ratio;
    return fmt::format("{:.2f}x [{:.2f}, {:.2f}], {:.2f}-{:.2f}, {} of {}", r.median, r.low, r.high, r.min, r.max,
                       summary.at_least_even, summary.rounds);
  };
  for (const auto& row : report.rows) {
    if (!row.skipped.empty() || row.peer_adamw_rounds.empty()) continue;
    out += fmt::format("{:<16} adamw {}; muon {}\n", row.preset, describe(row.adamw_rounds, row.peer_adamw_rounds),
                       describe(row.muon_rounds, row.peer_muon_rounds));
  }
  return out;
}

}  // namespace

std::vector<std::string> default_train_bench_presets(const torch::Device& device) {
  if (device.is_cuda()) return {"gpt2-small", "gpt2-medium", "llama-60m", "llama-130m", "mla-moe-small"};
  // On a few CPU cores a Muon step of gpt2-small's 85M matrix weights takes
  // about 25 s (docs/benchmarks.md, bench optim); these two take seconds.
  return {"llama-60m", "mla-moe-small"};
}

PeerRatioSummary summarize_peer_ratios(const std::vector<double>& muonlab_tokens_per_second,
                                       const std::vector<double>& peer_tokens_per_second) {
  if (muonlab_tokens_per_second.empty() || muonlab_tokens_per_second.size() != peer_tokens_per_second.size()) {
    fail("peer ratios: {} rounds of muonlab against {} of the peer; expected the same number, at least one",
         muonlab_tokens_per_second.size(), peer_tokens_per_second.size());
  }
  std::vector<double> ratios;
  for (size_t i = 0; i < muonlab_tokens_per_second.size(); ++i) {
    ratios.push_back(muonlab_tokens_per_second[i] / peer_tokens_per_second[i]);
  }
  PeerRatioSummary summary;
  summary.rounds = static_cast<int>(ratios.size());
  summary.ratio = summarize_rounds(ratios);
  summary.at_least_even = static_cast<int>(std::count_if(ratios.begin(), ratios.end(), [](double r) { return r >= 1; }));
  return summary;
}

double muon_overhead_fraction(double muon_optimizer_seconds, double adamw_optimizer_seconds,
                              double adamw_step_seconds) {
  return (muon_optimizer_seconds - adamw_optimizer_seconds) / adamw_step_seconds;
}

MuonVsAdamW compare_muon_with_adamw(const OptimizerStepTiming& adamw, const OptimizerStepTiming& muon) {
  MuonVsAdamW r;
  r.step_ratio = muon.step_seconds / adamw.step_seconds;
  r.optimizer_ratio = muon.optimizer_seconds / adamw.optimizer_seconds;
  r.tokens_per_second_ratio = muon.tokens_per_second / adamw.tokens_per_second;
  r.overhead_fraction = muon_overhead_fraction(muon.optimizer_seconds, adamw.optimizer_seconds, adamw.step_seconds);
  return r;
}

std::optional<double> model_flops_utilization(double tokens_per_second, double flops_per_token,
                                              std::optional<double> peak_flops) {
  if (!peak_flops || *peak_flops <= 0) return std::nullopt;
  return tokens_per_second * flops_per_token / *peak_flops;
}

double estimated_train_step_gib(const models::ModelConfig& config, int64_t batch, int64_t seq_len) {
  const double adamw_moments = 2.0 * static_cast<double>(models::model_stats(config).parameters) * kFp32Bytes;
  return estimated_training_gib(config, batch, seq_len, kFp32Bytes) + adamw_moments / kGiB;
}

TrainBenchReport run_train_bench(const TrainBenchConfig& config) {
  check_config(config);
  TrainBenchReport report;
  report.device = config.device.str();
  report.device_name = device_name(config.device);
  if (config.dtype != "auto" && config.dtype != "fp32" && config.dtype != "bf16") {
    fail("--dtype {}: expected auto, fp32 or bf16", config.dtype);
  }
  if (config.peer_allocator != "same" && config.peer_allocator != "system") {
    fail("--peer-allocator {}: expected same or system", config.peer_allocator);
  }
  report.dtype = short_dtype_name(training::training_dtype(config.dtype, config.device));
  report.batch = config.batch;
  report.seq_len = config.seq_len;
  report.warmup = config.warmup;
  report.steps = config.steps;
  report.rounds = config.rounds;
  report.clip_grad_norm = config.clip_grad_norm;
  report.overrides = config.overrides;
  resolve_peak(config, report);
  std::optional<PeerSetup> peer;
  if (!config.peer) {
    report.peer = "not run (--no-peer)";
  } else {
    const PeerLookup lookup = find_nanogpt_peer();
    peer = lookup.setup;
    if (peer && config.peer_allocator == "same") peer->preload = allocator_library();
    report.peer = peer ? describe(*peer) : "not run: " + lookup.missing;
  }
  report.background_load = config.background_load;
  report.cuda_graph = config.cuda_graph && config.device.is_cuda();
  const BusyLoad load(config.background_load);
  const OtherProcessesLoad other_load;
  for (const auto& preset : presets_of(config)) {
    report.rows.push_back(run_preset(preset, config, report.peak_flops, peer));
  }
  report.other_busy_cores = other_load.busy_cores();
  report.cores = core_count();
  return report;
}

std::string format_train_bench(const TrainBenchReport& report) {
  std::string out = format_header(report);
  out += format_timing_table(report);
  out += format_ratio_table(report);
  out += fmt::format(
      "(fwd+bwd: zero_grad, forward, loss, backward{}, the same code for both optimizers; "
      "opt: the optimizer step alone; step: both;\n"
      " MFU: model_stats training FLOPs x tokens/s over the peak; opt/step: the optimizer's share of its step; "
      "Muon extra: (Muon opt - AdamW opt) / AdamW step;\n"
      " faults, sys ms: minor page faults and kernel CPU time per timed step, the allocator's cost)\n",
      report.clip_grad_norm > 0 ? fmt::format(", clip_grad_norm {}", report.clip_grad_norm) : "");
  if (report.cuda_graph) out += "Muon's work before the learning rate replayed from a CUDA graph (optimizer.cuda_graph)\n";
  if (report.other_busy_cores) {
    out += fmt::format("other processes kept {:.1f} of {} cores busy while these ran\n", *report.other_busy_cores,
                       report.cores);
  }
  if (!report.peer.empty()) out += format_peer_table(report);
  return out;
}

std::string format_dtype_comparison(const TrainBenchReport& baseline, const TrainBenchReport& other) {
  std::string out = fmt::format("{} vs {} in this process ({} / {} tokens/s)\n", other.dtype, baseline.dtype,
                                other.dtype, baseline.dtype);
  out += fmt::format("{:<16} {:>10} {:>10}\n", "preset", "adamw", "muon");
  for (size_t i = 0; i < baseline.rows.size() && i < other.rows.size(); ++i) {
    const auto& a = baseline.rows[i];
    const auto& b = other.rows[i];
    if (!a.skipped.empty() || !b.skipped.empty()) continue;
    out += fmt::format("{:<16} {:>9.2f}x {:>9.2f}x\n", a.preset, b.adamw.tokens_per_second / a.adamw.tokens_per_second,
                       b.muon.tokens_per_second / a.muon.tokens_per_second);
  }
  return out;
}

}  // namespace muonlab::bench
