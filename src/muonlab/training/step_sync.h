// What a training step does differently alone and as one rank of several.
// The loop calls the same hooks either way; a one-process run's are no-ops
// (and plain gradient clipping), a rank's run the collectives of
// distributed::DataParallel. So the loop has no `if (parallel)` branches.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "muonlab/distributed/process_group.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::training {

// A step's numbers as every rank agrees on them.
struct AgreedStep {
  double loss = 0;         // the mean over ranks
  double grad_norm = 0;    // the global norm before clipping; 0 when not clipping alone
  bool stop = false;       // some rank was asked to stop
  bool grad_norm_measured = false;  // grad_norm covers every gradient the optimizers apply
};

class StepSync {
 public:
  virtual ~StepSync() = default;

  // At the start (or after a resume): every rank holds rank 0's weights and
  // only the optimizer state it owns.
  virtual void start(bool resumed) = 0;
  // Before each micro-batch's backward; the last one's starts the reduction.
  virtual void before_backward(bool last_micro_batch) = 0;
  // After the step's backward: gradients synchronized (on every rank when
  // `everywhere`, for diagnostics that read them) and clipped by the global
  // norm to run.clip_grad_norm; the loss averaged; stop requests combined.
  virtual AgreedStep agree(int64_t step, double loss, bool stop_requested, bool everywhere) = 0;
  // After the optimizer's update: ranks exchange the matrices they updated.
  virtual void after_update() = 0;
  // Returns once every process has called it (checkpoints: rank 0 writes
  // what every rank holds alike, each rank its own optimizer state).
  virtual void barrier() = 0;
  // Evaluation: whether this process evaluates validation batch `index`, and
  // each element's total over every process's `local` sums (in one
  // collective, however many there are).
  virtual bool evaluates(int64_t index) const = 0;
  virtual std::vector<double> totals(const std::vector<double>& local) = 0;
  // QK-clip: each element the maximum over every process's, in place.
  virtual void max_over_ranks(torch::Tensor& values) = 0;
};

// For this process: alone when `env` is not distributed, else a rank joining
// the others (Gloo on the CPU, NCCL on GPUs).
std::unique_ptr<StepSync> make_step_sync(const distributed::DistEnv& env, const TrainConfig& config,
                                         const torch::Device& device, models::Transformer& model,
                                         TrainOptimizer& optimizer);

}  // namespace muonlab::training
