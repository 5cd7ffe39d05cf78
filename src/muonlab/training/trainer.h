// One training run, as `muonlab train` runs it: model, data, optimizer and
// schedule from a TrainConfig; gradient accumulation, global-norm clipping,
// evaluation on a fixed validation budget, metrics as JSONL, and the final
// weights as safetensors, all under run.out_dir.
//
// Checkpoints every run.checkpoint_every steps, at the end, and when SIGINT
// or SIGTERM arrives (the run then stops after its current step). With
// `resume`, a run continues from the newest complete checkpoint and reaches
// the same weights, bit for bit on CPU, as an uninterrupted one.
//
// run.dtype = "bf16" (or "auto" on bf16 hardware) trains under autocast with
// fp32 master weights.
// Every run.diagnostics_every steps the step record also carries each
// optimizer group's update RMS; MoE models add their routing balance.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "muonlab/training/train_config.h"

namespace muonlab::training {

struct StepReport {
  int64_t step = 0;  // 1-based: steps done
  int64_t total_steps = 0;
  double loss = 0;
  double lr_multiplier = 0;
  std::vector<std::pair<std::string, double>> lrs;  // ("muon", lr), ("adamw", lr): this step's
  double grad_norm = 0;
  int64_t tokens = 0;  // trained so far
  double tokens_per_second = 0;
  double elapsed_seconds = 0;
  double mfu = -1;  // model FLOPs utilization in [0, 1]; -1 where the device's peak is unknown
  std::string routing;  // MoE models: describe_routing of the step's last micro-batch
};

struct EvalReport {
  int64_t step = 0;
  std::optional<double> val_loss;  // with data.val
  int64_t tokens = 0;              // evaluated
  // With run.hellaswag: accuracy by the mean and by the summed loss of each
  // ending (multiple_choice_eval.h), over every item scored.
  std::optional<double> hellaswag_acc_norm, hellaswag_acc;
  int64_t hellaswag_items = 0;
};

struct TrainResult {
  int64_t steps = 0;
  double final_train_loss = 0;
  double final_val_loss = -1;  // -1: no validation data
  std::string weights_path;  // empty when interrupted
  std::string metrics_path;
  std::string checkpoint;    // the last one written
  int64_t resumed_from = 0;  // step of the checkpoint resumed, 0 if none
  bool interrupted = false;
  int64_t skipped_steps = 0;  // non-finite steps skipped (run.on_nonfinite = "skip")
  int64_t rank = 0;  // of world_size ranks; only rank 0 writes files (weights_path empty elsewhere)
  int64_t world_size = 1;
};

struct TrainCallbacks {
  std::function<void(const StepReport&)> on_step;
  std::function<void(const EvalReport&)> on_eval;
  // During an evaluation, after each validation batch: the step, batches
  // done and batches in all (for a progress line while the loss is computed).
  std::function<void(int64_t step, int64_t done, int64_t batches)> on_eval_progress;
  // Before the first step: something the user should know about this run
  // (a resume that cannot reproduce the uninterrupted run bit for bit).
  std::function<void(const std::string& note)> on_note;
};

// The note for a CPU run resumed with another intra-op thread count than
// the checkpoint's; "" when the counts agree or the checkpoint has none.
std::string thread_count_change_note(const std::optional<int>& checkpoint_threads, int threads, int64_t step);

// Under a launcher (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set: `muonlab
// launch` or torchrun) the run is one rank of a data-parallel group on c10d
// Gloo (data_parallel.h, [distributed] in the config): the global batch is
// batch_size x grad_accum x WORLD_SIZE; rank 0 writes metrics, checkpoints
// and weights and alone calls `callbacks`; a checkpoint resumes at any
// world size with the same global batch.
//
// The run folder is locked for the run (a second process on it fails naming
// the holder's pid). A fresh run refuses a folder that already holds a run
// (a checkpoint or final weights): resume it, or move it aside first
// (move_run_aside, run_folder.h). `resume` continues from the newest
// complete checkpoint, `resume_from` (a checkpoint folder) from that one.
TrainResult train(const TrainConfig& config, const TrainCallbacks& callbacks = {}, bool resume = false,
                  const std::string& resume_from = "");

// What a run would train, worked out by reading and checking everything
// train() reads before its first step (the model, the optimizer's routing
// and options, the token shards, the HellaSwag items) and creating nothing:
// `muonlab train --check`. One process (no launcher).
struct RunPlan {
  int64_t steps = 0;
  int64_t tokens_per_step = 0;  // batch_size x seq_len x grad_accum
  double flops = 0;             // training FLOPs of all the steps (6N + attention per token)
  int64_t parameters = 0;
  int64_t muon_parameters = 0;  // in Muon's matrices; the rest go to AdamW
  int64_t muon_tensors = 0;
  int64_t train_tokens_per_epoch = 0;     // in whole batches
  int64_t val_split_tokens = 0;           // 0 without data.val
  int64_t val_tokens_per_evaluation = 0;  // run.eval_tokens in whole batches, at most the split
  int64_t hellaswag_items = 0;

  int64_t tokens() const { return steps * tokens_per_step; }
  double epochs() const { return static_cast<double>(tokens()) / static_cast<double>(train_tokens_per_epoch); }
};
RunPlan plan_run(const TrainConfig& config);

// The config as a run folder records it: data paths (and run.init_from)
// made absolute, so `align` and `export` find the data from any folder.
TrainConfig with_absolute_paths(TrainConfig config);

// Whether a LibTorch error message is an allocator's out-of-memory.
bool is_out_of_memory(const std::string& allocator_message);

}  // namespace muonlab::training
