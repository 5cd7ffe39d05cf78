// Training checkpoints: out_dir/checkpoints/step_NNNNNNNN/ holding
// model.safetensors (weights by name, readable from Python), the optimizer
// state (optimizer.pt, or under sharded distributed state one file per
// rank, optimizer.rank<R>-of-<N>.pt, so that no rank gathers the whole
// state), rng_state.safetensors (the CPU and CUDA generators' states), and
// state.json (step, loader cursor, what must match on resume, and the
// manifest: every file with its size and CRC-32).
// A checkpoint is written into a ".tmp" folder and renamed into place once
// every file is synced, so a crash mid-write leaves the previous one intact;
// the oldest beyond keep_checkpoints are then removed.
#pragma once

#include <cstdint>
#include <functional>
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
  // LibTorch's intra-op threads up to here: CPU kernels add in an order that
  // depends on it, so a run resumed with another count is not bit for bit
  // the uninterrupted one. None in checkpoints older than the record.
  std::optional<int> intra_op_threads;
};

// Returns the checkpoint's folder.
std::string save_checkpoint(const TrainConfig& config, const CheckpointState& state, const models::Transformer& model,
                            const TrainOptimizer& optimizer);

// The same, called by every rank of a run whose optimizer state is sharded:
// rank 0 prepares the folder, every rank writes its own optimizer state
// file into it, and rank 0 adds the rest and renames the folder into place.
// `barrier` returns once every rank has reached it (the folder must be on a
// file system all ranks share, as for one writer's resume). Returns the
// checkpoint's folder on every rank.
std::string save_sharded_checkpoint(const TrainConfig& config, const CheckpointState& state,
                                    const models::Transformer& model, const TrainOptimizer& optimizer, int64_t rank,
                                    const std::function<void()>& barrier);

// Rank `rank`'s optimizer state file among `world_size`: "optimizer.rank1-of-4.pt".
std::string optimizer_shard_name(int64_t rank, int64_t world_size);

// The folder's state.json: step and loader cursor (world_size stays 1; the
// identity is checked by load_checkpoint). Fails naming the file when it is
// missing or corrupt.
CheckpointState read_checkpoint_state(const std::string& folder);

// Copies the weights of a safetensors file into `model`, after checking that
// it holds exactly the model's parameters, by name and shape. A file that
// stores each MoE expert's weights apart (muonlab's layout before it stacked
// them) loads too.
void load_weights(const std::string& safetensors_path, models::Transformer& model);

// The newest complete checkpoint under config.run.out_dir, if any.
std::optional<std::string> newest_checkpoint(const std::string& out_dir);

// Loads weights and optimizer state; fails naming the file and what differs
// (model, global batch, data) before changing anything it can check first.
// `world_size` ranks may resume a checkpoint of any other number of ranks
// with the same global batch (data.batch_size x world_size), and with its
// optimizer state in one file or in any number of rank files.
CheckpointState load_checkpoint(const std::string& folder, const TrainConfig& config, models::Transformer& model,
                                TrainOptimizer& optimizer, int64_t world_size = 1);

}  // namespace muonlab::training
