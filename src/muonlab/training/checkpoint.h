// Training checkpoints: out_dir/checkpoints/step_NNNNNNNN/ holding
// model.safetensors (weights by name, readable from Python), optimizer.pt,
// rng_state.safetensors (the CPU and CUDA generators' states), and
// state.json (step, loader cursor, and what must match on resume).
// A checkpoint is written into a ".tmp" folder and renamed into place once
// every file is synced, so a crash mid-write leaves the previous one intact;
// the oldest beyond keep_checkpoints are then removed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "muonlab/data/token_loader.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::training {

struct CheckpointState {
  int64_t step = 0;  // steps completed
  data::LoaderCursor cursor;  // in global batches
  int64_t world_size = 1;     // ranks that trained up to here (any may resume)
};

// Returns the checkpoint's folder.
std::string save_checkpoint(const TrainConfig& config, const CheckpointState& state, const models::Transformer& model,
                            const TrainOptimizer& optimizer);

// The folder's state.json: step and loader cursor (world_size stays 1; the
// identity is checked by load_checkpoint). Fails naming the file when it is
// missing or corrupt.
CheckpointState read_checkpoint_state(const std::string& folder);

// Copies the weights of a safetensors file into `model`, after checking that
// it holds exactly the model's parameters, by name and shape.
void load_weights(const std::string& safetensors_path, models::Transformer& model);

// The newest complete checkpoint under config.run.out_dir, if any.
std::optional<std::string> newest_checkpoint(const std::string& out_dir);

// Loads weights and optimizer state; fails naming the file and what differs
// (model, global batch, data) before changing anything it can check first.
// `world_size` ranks may resume a checkpoint of any other number of ranks
// with the same global batch (data.batch_size x world_size).
CheckpointState load_checkpoint(const std::string& folder, const TrainConfig& config, models::Transformer& model,
                                TrainOptimizer& optimizer, int64_t world_size = 1);

}  // namespace muonlab::training
