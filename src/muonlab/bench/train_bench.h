// `muonlab bench train`: whole training steps per preset, AdamW
// against the Muon + AdamW hybrid, both in the same process so their ratio
// means something.
//
// Each step is timed in two phases, each closed by a device sync:
//  1. zero_grad + forward + loss + backward + gradient clipping, the
//     trainer's step up to the optimizer;
//  2. the optimizer step alone.
// Reported per preset and optimizer: both phase times, the whole step,
// tokens/s and MFU; per preset: Muon/AdamW ratios and Muon's extra
// optimizer time as a fraction of AdamW's whole step.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "muonlab/bench/timing.h"
#include "muonlab/models/transformer.h"

namespace muonlab::bench {

// The two optimizers compared, by the names the factory receives. AdamW is
// the baseline of every ratio.
inline constexpr const char* kAdamWName = "adamw";
inline constexpr const char* kMuonName = "muon";

struct TrainBenchConfig {
  torch::Device device = torch::kCPU;
  // As the trainer's run.dtype: "bf16" autocasts over fp32 weights (CUDA or
  // CPU), "fp32" does not, "auto" is bf16 where the device has bf16
  // instructions (training::training_dtype).
  std::string dtype = "auto";
  std::vector<std::string> presets;    // empty: default_train_bench_presets(device)
  std::vector<std::string> overrides;  // "key=value", applied to every preset
  int64_t batch = 4;
  int64_t seq_len = 256;
  // Untimed steps per optimizer. Three, because the first run in a process
  // (AdamW) spends its first steps getting memory from the kernel while the
  // allocator's heap settles: after one warm-up step its timed steps were
  // 18% slower than the Muon run after it (48 thousand page faults a step,
  // docs/benchmarks.md); after two or three the runs agree.
  int warmup = 3;
  int steps = 3;   // timed steps per optimizer; medians are reported
  // Rounds per preset, each timing muonlab's two optimizers and the peer's
  // two; odd rounds run in the reverse order of even ones (the peer's Muon
  // first, muonlab's AdamW last), so that a drifting machine or a settling
  // heap favours no side. Above one, each side's median round is reported,
  // and the ratios to the peer get an interval (summarize_peer_ratios).
  int rounds = 1;
  double clip_grad_norm = 1.0;  // the trainer's default; 0: no clipping
  double max_gib = 16;          // presets whose estimated memory exceeds this are skipped
  double peak_tflops = 0;       // MFU's denominator; 0: the device's table entry, if any
  uint64_t seed = 0;
  // Also time the nanoGPT-style PyTorch peer (nanogpt_peer.h) on each
  // GPT-2-style preset, on the same device, where a Python with torch is
  // present; a peer that fails is noted in its row.
  bool peer = true;
  // The peer's malloc: "same" preloads the tcmalloc muonlab runs with (where
  // it does), so the ratio compares training loops, not allocators;
  // "system" leaves it glibc's, as a PyTorch user runs it by default.
  std::string peer_allocator = "same";
  // Busy-loop processes (core/busy_load.h) kept running beside every timed
  // run, muonlab's and the peer's: a loaded machine, reproducibly.
  int background_load = 0;
  // Muon's step from a CUDA graph (optimizer.cuda_graph; CUDA only).
  bool cuda_graph = false;
};

// What `--presets` means when not given: the presets that train in a
// sensible time on the device.
std::vector<std::string> default_train_bench_presets(const torch::Device& device);

struct OptimizerStepTiming {
  std::string optimizer;
  double forward_backward_seconds = 0;  // median of phase 1
  double optimizer_seconds = 0;         // median of phase 2
  double step_seconds = 0;              // median of the per-step sums
  double tokens_per_second = 0;         // over step_seconds
  std::optional<double> mfu;            // in [0, 1]; none without a peak
  int steps_run = 0;                    // warm-up and timed steps taken
  // Per timed step, over all of them: the allocator's fresh pages and the
  // kernel's share of the time (ProcessUsage).
  double minor_faults_per_step = 0;
  double system_seconds_per_step = 0;
};

// Muon against AdamW on one preset; every ratio is muon / adamw.
struct MuonVsAdamW {
  double step_ratio = 0;
  double optimizer_ratio = 0;
  double tokens_per_second_ratio = 0;
  // (Muon's optimizer step - AdamW's) / AdamW's whole step: what switching
  // to Muon adds to a step. The optimizer phases are compared rather than
  // whole steps because forward and backward are the same code for both.
  double overhead_fraction = 0;
};

struct TrainBenchRow {
  std::string preset;
  int64_t parameters = 0;
  double estimated_gib = 0;
  std::string skipped;  // non-empty: why the preset did not run
  double gflop_per_token = 0;  // training FLOPs (model_stats: 3x forward)
  OptimizerStepTiming adamw;
  OptimizerStepTiming muon;
  MuonVsAdamW muon_vs_adamw;
  // The peer's tokens/s with the same optimizer, model, batch, precision and
  // threads; none where it did not run (peer_note says why).
  std::optional<double> peer_adamw_tokens_per_second;
  std::optional<double> peer_muon_tokens_per_second;
  std::string peer_note;
  // Every round's timings, in the order the rounds ran; adamw and muon above
  // are the rounds of median tokens/s, the peer's figures the medians of its
  // rounds (empty where it did not run).
  std::vector<OptimizerStepTiming> adamw_rounds, muon_rounds;
  std::vector<double> peer_adamw_rounds, peer_muon_rounds;
};

// muonlab's tokens/s over the peer's, round by round (paired: the two ran
// side by side), summarized: the median ratio with a 95% bootstrap interval
// of it, the range, and how many rounds came out at 1x or above.
struct PeerRatioSummary {
  int rounds = 0;
  RoundsSummary ratio;  // of muonlab / peer
  int at_least_even = 0;
};
PeerRatioSummary summarize_peer_ratios(const std::vector<double>& muonlab_tokens_per_second,
                                       const std::vector<double>& peer_tokens_per_second);

struct TrainBenchReport {
  std::string device;
  std::string device_name;  // the CUDA device's name, or "cpu"
  std::string dtype;
  int64_t batch = 0;
  int64_t seq_len = 0;
  int warmup = 0;
  int steps = 0;
  int rounds = 1;
  double clip_grad_norm = 0;
  std::vector<std::string> overrides;
  std::optional<double> peak_flops;  // FLOP/s; none: MFU is n/a
  std::string peak_source;           // "--peak-tflops" or the table entry used
  std::vector<TrainBenchRow> rows;
  std::string peer;  // the peer's command, or why it did not run
  int background_load = 0;  // busy processes beside the runs
  bool cuda_graph = false;
  // Cores' worth of CPU time other processes (the background load included)
  // used while the presets ran; none where /proc/stat cannot be read.
  std::optional<double> other_busy_cores;
  int cores = 0;
};

double muon_overhead_fraction(double muon_optimizer_seconds, double adamw_optimizer_seconds,
                              double adamw_step_seconds);
MuonVsAdamW compare_muon_with_adamw(const OptimizerStepTiming& adamw, const OptimizerStepTiming& muon);

// Model FLOPs utilization: achieved training FLOP/s over the peak; none
// when the peak is unknown.
std::optional<double> model_flops_utilization(double tokens_per_second, double flops_per_token,
                                              std::optional<double> peak_flops);

// Rough peak memory of a training step with an optimizer: the model bench's
// estimate (estimated_training_gib, fp32) plus AdamW's two moments, the
// larger state of the two optimizers. Errs high, as that estimate does.
double estimated_train_step_gib(const models::ModelConfig& config, int64_t batch, int64_t seq_len);

TrainBenchReport run_train_bench(const TrainBenchConfig& config);
std::string format_train_bench(const TrainBenchReport& report);

// Two runs of the same presets in one process, at two precisions: tokens/s
// of `other` over `baseline`'s, per preset and optimizer (e.g. bf16 / fp32).
std::string format_dtype_comparison(const TrainBenchReport& baseline, const TrainBenchReport& other);

}  // namespace muonlab::bench
