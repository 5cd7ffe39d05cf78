// A training run's folder as `muonlab train` leaves it: config.toml, the
// final model.safetensors, and checkpoints/step_N/ with their own weights.
// Shared by the trainer and the commands that read a run (export, generate,
// align).
#pragma once

#include <string>

#include "muonlab/data/token_loader.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/train_config.h"

namespace muonlab::training {

// RUN/config.toml; fails naming the file when it is missing.
TrainConfig load_run_config(const std::string& run_dir);

// RUN/model.safetensors, else the newest complete checkpoint's weights.
std::string run_weights(const std::string& run_dir);

// True for what load_run_model takes: a folder, or a .safetensors file.
bool names_run_model(const std::string& path);

// The run folder a weights file lies in: its own folder, or the run above
// checkpoints/step_N/.
std::string run_folder_of_weights(const std::string& weights_path);

// The run folder of what load_run_model takes: the folder itself, or the
// run a weights file lies in; fails naming a path that does not exist.
std::string run_folder_of_model(const std::string& path);

// The model of a run folder (its final weights, else the newest checkpoint's)
// or of a weights file inside one, with the architecture from config.toml.
models::ModelConfig run_model_config(const std::string& path);
models::Transformer load_run_model(const std::string& path);

// The loader of `spec`'s shards as the trainer builds it from `config`
// (batch, sequence, seed, vocabulary), for `rank` of `world_size` ranks,
// each reading its own windows of every global batch.
data::TokenLoader make_run_loader(const std::string& spec, const TrainConfig& config, bool shuffle, int64_t rank = 0,
                                  int64_t world_size = 1);

// A point of a run to read on from: its weights and where the run's
// training loader would go on.
struct RunSnapshot {
  std::string weights;        // a model.safetensors
  data::LoaderCursor cursor;  // at the start for a run's final weights
  std::string described;      // "checkpoint step_40, loader from epoch 0 batch 40"
};

// A checkpoint folder's weights and loader cursor; fails naming the folder
// when either is missing.
RunSnapshot checkpoint_snapshot(const std::string& checkpoint_dir);
// The newest complete checkpoint (the run's last one holds its final
// weights), else the final weights with the loader from the start.
RunSnapshot latest_run_snapshot(const std::string& run_dir);

// Renames a run folder to "<folder>.old-N" (the first free N >= 1) so a
// fresh run can start at its path; returns the new name. No-op (empty
// result) when the folder does not exist. Refused, naming the pid, while
// another muonlab process holds the folder's lock (a run in progress).
std::string move_run_aside(const std::string& run_dir);

// The run's single-process training loader, positioned at `cursor`.
data::TokenLoader resume_run_loader(const TrainConfig& config, const data::LoaderCursor& cursor);

}  // namespace muonlab::training
