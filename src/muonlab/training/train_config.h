// Everything a training run needs, read from one TOML file plus `--set
// section.key=value` overrides. Unknown keys, wrong types and bad values are
// errors naming the file (or the override), the line and the key. The
// resolved config prints back as TOML that loads to the same config.
//
// The keys, outside [model] (the model config's own fields), are declared
// once, in the schema table of train_config.cpp, which parses, prints and
// documents them (docs/config.md, `muonlab train --config-reference`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "muonlab/models/model_config.h"
#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/second_moment.h"
#include "muonlab/optimizers/step_guard.h"
#include "muonlab/training/schedule.h"

namespace muonlab::training {

struct DataSettings {
  std::string train;  // required
  std::string val;    // optional: no evaluation without it
  std::string tokenizer = "gpt2";
  int64_t batch_size = 8;
  int64_t seq_len = 0;  // 0: the model's block_size
  bool shuffle = true;
  int64_t seed = 1337;
};

// Muon's settings default to optim::MuonOptions' own, read from it: one set
// of defaults, torch.optim.Muon's (lr 1e-3, weight decay 0.1). The bundled
// configs set the recipe they were tuned for (lr 0.02, no weight decay, the
// modded-nanogpt setting) explicitly.
struct OptimizerSettings {
  // muon | muon2 (Muon², elementwise second moment) | muon2f (Muon²-F,
  // factored) | adamw
  std::string name = "muon";
  double lr = optim::MuonOptions().lr();  // Muon's, or AdamW's when name = "adamw"
  double momentum = optim::MuonOptions().momentum();
  bool nesterov = optim::MuonOptions().nesterov();
  int64_t ns_steps = 0;       // 0: the variant's default, 5 for Muon and 3 for Muon² / Muon²-F
  std::string ns_coefficients = optim::MuonOptions().ns_coefficients().name;
  std::string ns_dtype = optim::to_string(optim::MuonOptions().ns_dtype());  // auto: bf16 where the device has bf16 instructions
  std::string ns_method = optim::to_string(optim::MuonOptions().ns_method());  // gram: Gram Newton-Schulz
  int64_t gram_restart = optim::MuonOptions().gram_restart();
  bool cuda_graph = optim::MuonOptions().cuda_graph();  // CUDA: Muon's NS work replayed from a CUDA graph
  std::string scale_rule = optim::to_string(optim::MuonOptions().scale_rule());
  bool orthogonalize = optim::MuonOptions().orthogonalize();  // false: the normalized-momentum ablation
  double weight_decay = optim::MuonOptions().weight_decay();
  double beta2 = optim::MuonOptions().beta2();  // Muon² / Muon²-F
  double second_moment_eps = optim::MuonOptions().second_moment_eps();
  double neuron_beta2 = optim::MuonOptions().neuron_beta2();  // NorMuon
  double neuron_eps = optim::MuonOptions().neuron_eps();
  // QK-clip (MuonClip): after each step, heads whose largest attention logit
  // exceeded this are rescaled to it; 0: off.
  double qk_clip_tau = 0;
  bool bias_correction = optim::MuonOptions().bias_correction();
  // Group Muon: heads per block (0: whole matrices), contiguous | strided |
  // random, which of q, k, v, o, mla_up; lr scale from the block's shape.
  int64_t group_size = optim::MuonOptions().group_size();
  std::string grouping = optim::to_string(optim::MuonOptions().grouping_rule());
  std::vector<std::string> grouped = {"q", "k", "v", "o"};
  bool block_scale = optim::MuonOptions().block_scale();
  int64_t grouping_seed = static_cast<int64_t>(optim::MuonOptions().grouping_seed());
  double adamw_lr = 3e-4;     // the hybrid's AdamW part (embeddings, head, norms, biases)
  std::array<double, 2> adamw_betas{0.9, 0.95};
  double adamw_eps = 1e-8;
  double adamw_weight_decay = 0.0;
};

struct RunSettings {
  int64_t steps = 1000;
  int64_t grad_accum = 1;
  double clip_grad_norm = 1.0;  // 0: no clipping
  int64_t seed = 1337;
  std::string device = "cpu";
  int64_t eval_every = 100;     // 0: only at the end
  int64_t eval_tokens = 65536;
  // Multiple-choice items in HellaSwag's format (multiple_choice_eval.h),
  // scored at every evaluation through data.tokenizer; "" for none.
  std::string hellaswag;
  int64_t hellaswag_items = 0;  // the first N of them; 0: all
  // Weights to start from instead of a random init (initial_weights.h); "".
  std::string init_from;
  int64_t log_every = 10;
  int64_t checkpoint_every = 0; // 0: only at the end and on a signal
  int64_t keep_checkpoints = 3;
  std::string out_dir = "runs/default";
  // A NaN or infinite loss or gradient: stop the run (kError) or skip the step.
  optim::NonFinitePolicy on_nonfinite = optim::NonFinitePolicy::kError;
  // With on_nonfinite = skip: the run fails once more steps than this were
  // skipped (-1: no limit), so a run that mostly skipped is not "done".
  int64_t max_skipped_steps = 10;
  // Also write the metrics as TensorBoard event files in out_dir/tensorboard.
  bool tensorboard = false;
  // Precision of the forward pass's matmuls. "bf16": autocast to bfloat16
  // (CUDA or CPU) with fp32 master weights, gradients and optimizer state;
  // "fp32": no autocast; "auto": bf16 where the device multiplies bf16
  // natively (core/native_bf16.h), fp32 elsewhere. training_dtype() resolves it.
  std::string dtype = "auto";
  double peak_tflops = 0;         // the device's peak for MFU; 0: look it up (known GPUs only)
  int64_t diagnostics_every = 10; // update RMS per optimizer group every N steps; 0: never
  // Group Muon's one-step gain and norm cost per attention weight
  // (one_step_metrics.h) every N steps; 0: never. Costs a float64 SVD of
  // each attention gradient and its blocks.
  int64_t one_step_every = 50;
  // The group sizes g measured; empty: the run's optimizer.group_size, or
  // head-wise (1) for plain Muon.
  std::vector<int64_t> one_step_group_sizes;
};

// Used when the run is one rank of several (RANK and WORLD_SIZE set, by
// `muonlab launch` or torchrun); a one-process run ignores it. Each rank
// trains on data.batch_size sequences per micro-step: the global batch is
// data.batch_size x run.grad_accum x WORLD_SIZE.
// run.dtype resolved on the run's device: kBFloat16 (autocast) or kFloat32.
torch::Dtype training_dtype(const std::string& run_dtype, const torch::Device& device);


struct DistributedSettings {
  // Distributed Muon (ZeRO-1): each rank orthogonalizes and keeps the state
  // of its share of Muon's matrices (gradients reduce-scattered to their
  // owners, updated matrices all-gathered). false: every rank steps every
  // matrix after an all-reduce, as plain data parallelism does.
  bool shard_muon = true;
  // The same for AdamW's parameters (the Muon hybrid's AdamW part, or AdamW
  // alone): each rank steps its share and keeps only their two moments, then
  // the updated parameters are all-gathered. For models whose embeddings
  // dominate, AdamW's moments are most of the optimizer memory.
  bool shard_adamw = true;
  int64_t bucket_mb = 25;   // all-reduce bucket
  bool overlap = true;      // all-reduce buckets while backward still runs
  // A collective (or the rendezvous) that waits longer fails, naming the
  // ranks that stopped answering: a dead or hung rank ends the others.
  double timeout_s = 120;
};

// Schedule fields set in a [schedule.<group>] table; the rest come from
// [schedule].
struct ScheduleChanges {
  std::optional<ScheduleKind> kind;
  std::optional<int64_t> warmup_steps;
  std::optional<double> min_ratio;
  std::optional<double> decay_fraction;
  std::optional<DecayShape> decay_shape;

  bool empty() const { return !kind && !warmup_steps && !min_ratio && !decay_fraction && !decay_shape; }
  ScheduleConfig applied_to(ScheduleConfig base) const;
};

struct TrainConfig {
  std::string model_preset = "tiny-gpt2";
  models::ModelConfig model = models::model_preset("tiny-gpt2");
  DataSettings data;
  OptimizerSettings optimizer;
  ScheduleConfig schedule;
  ScheduleChanges adamw_schedule_changes;  // the Muon hybrid's AdamW part
  double momentum_start = -1;  // < 0: no momentum warmup
  int64_t momentum_warmup_steps = 0;
  RunSettings run;
  DistributedSettings distributed;
};

// The schedule of the Muon hybrid's AdamW part: [schedule] with
// [schedule.adamw]'s changes. (AdamW alone follows [schedule].)
ScheduleConfig adamw_part_schedule(const TrainConfig& config);

// optimizer.name's values: the Muon variants (optim::muon_variant_names:
// muon, muon2, muon2f; then normuon; each with AdamW for the non-matrix
// parameters), then "adamw" alone.
std::vector<std::string> optimizer_names();

// Every key a config may set (section.key), "model.preset" and the model's
// fields included: what `--set` takes.
std::vector<std::string> config_keys();

// Whether the optimizer is one of the Muon family (with AdamW for the rest).
bool is_muon_variant(const std::string& optimizer_name);

// The Muon variant an optimizer name stands for (its second moment before
// NS; none for NorMuon); fails for "adamw" and unknown names.
optim::SecondMomentKind muon_variant(const std::string& optimizer_name);

// Whether the name is NorMuon's (neuron-wise normalization after NS).
bool uses_neuron_norm(const std::string& optimizer_name);

// The run's precisions on `device` in words, for the line `train` prints at
// its start: autocast or not, Newton-Schulz's dtype, and why `auto` chose
// them ("forward in bf16 (autocast), ..., Newton-Schulz in bf16 (auto:
// AVX512-BF16)").
std::string describe_precision(const TrainConfig& config, const torch::Device& device);

// Reads `path` (TOML), then applies each "section.key=value" override in
// order; a value that is not TOML is taken as a string (paths need no quotes).
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_train_config, from TOML text; `source` names it in errors.
TrainConfig parse_train_config(const std::string& toml_text, const std::string& source,
                               const std::vector<std::string>& overrides = {});

// The resolved config as TOML: every setting, defaults included.
std::string format_train_config(const TrainConfig& config);

// Every key as a Markdown table (key, accepted values, default, meaning):
// docs/config.md, printed by `muonlab train --config-reference`.
std::string format_config_reference();

}  // namespace muonlab::training
