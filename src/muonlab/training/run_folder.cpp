#include "muonlab/training/run_folder.h"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "muonlab/core/errors.h"
#include "muonlab/core/folder_lock.h"
#include "muonlab/training/checkpoint.h"

namespace muonlab::training {

namespace fs = std::filesystem;

TrainConfig load_run_config(const std::string& run_dir) {
  const fs::path path = fs::path(run_dir) / "config.toml";
  if (!fs::is_regular_file(path)) {
    fail("'{}' not found: expected a run folder written by muonlab train", path.string());
  }
  return load_train_config(path.string());
}

std::string run_weights(const std::string& run_dir) {
  const fs::path final_weights = fs::path(run_dir) / "model.safetensors";
  if (fs::is_regular_file(final_weights)) return final_weights.string();
  if (auto checkpoint = newest_checkpoint(run_dir)) return (fs::path(*checkpoint) / "model.safetensors").string();
  fail("run folder '{}' holds neither model.safetensors nor a complete checkpoint under checkpoints/", run_dir);
}

bool names_run_model(const std::string& path) {
  return fs::is_directory(path) || fs::path(path).extension() == ".safetensors";
}

std::string run_folder_of_weights(const std::string& weights_path) {
  const fs::path folder = fs::path(weights_path).parent_path();
  if (fs::is_regular_file(folder / "config.toml")) return folder.string();
  const fs::path above_checkpoints = folder.parent_path().parent_path();
  if (folder.parent_path().filename() == "checkpoints" && fs::is_regular_file(above_checkpoints / "config.toml")) {
    return above_checkpoints.string();
  }
  fail("'{}': no config.toml beside it or above its checkpoints/ folder, so its architecture is unknown; "
       "give a run folder written by muonlab train, or a model file from `muonlab model init`",
       weights_path);
}

std::string run_folder_of_model(const std::string& path) {
  if (fs::is_directory(path)) return path;
  if (!fs::is_regular_file(path)) fail("model '{}' not found", path);
  return run_folder_of_weights(path);
}

namespace {

// (run folder, weights file) of a run folder or a weights file.
std::pair<std::string, std::string> run_and_weights(const std::string& path) {
  const std::string run_dir = run_folder_of_model(path);
  return {run_dir, fs::is_directory(path) ? run_weights(path) : path};
}

}  // namespace

models::ModelConfig run_model_config(const std::string& path) {
  return load_run_config(run_and_weights(path).first).model;
}

models::Transformer load_run_model(const std::string& path) {
  const auto [run_dir, weights] = run_and_weights(path);
  models::Transformer model(load_run_config(run_dir).model);
  load_weights(weights, model);
  return model;
}

data::TokenLoader make_run_loader(const std::string& spec, const TrainConfig& config, bool shuffle, int64_t rank,
                                  int64_t world_size) {
  data::LoaderOptions options;
  options.rank = static_cast<int>(rank);
  options.world_size = static_cast<int>(world_size);
  options.batch_size = config.data.batch_size;
  options.seq_len = config.data.seq_len;
  options.shuffle = shuffle;
  options.seed = static_cast<uint64_t>(config.data.seed);
  options.vocab_size = config.model.vocab_size;
  return data::TokenLoader(data::find_shards(spec), options);
}

RunSnapshot checkpoint_snapshot(const std::string& checkpoint_dir) {
  const fs::path folder(checkpoint_dir);
  const fs::path weights = folder / "model.safetensors";
  if (!fs::is_regular_file(weights)) fail("checkpoint '{}' has no model.safetensors", folder.string());
  const data::LoaderCursor cursor = read_checkpoint_state(folder.string()).cursor;
  return {weights.string(), cursor,
          fmt::format("checkpoint {}, loader from epoch {} batch {}", folder.filename().string(), cursor.epoch,
                      cursor.batch)};
}

RunSnapshot latest_run_snapshot(const std::string& run_dir) {
  if (std::optional<std::string> newest = newest_checkpoint(run_dir)) return checkpoint_snapshot(*newest);
  const fs::path final_weights = fs::path(run_dir) / "model.safetensors";
  if (fs::is_regular_file(final_weights)) return {final_weights.string(), {}, "final weights, loader from the start"};
  fail("run folder '{}' holds neither a complete checkpoint under checkpoints/ nor model.safetensors", run_dir);
}

std::string move_run_aside(const std::string& run_dir) {
  fs::path folder(run_dir);
  while (!folder.empty() && folder.filename().empty()) folder = folder.parent_path();  // "runs/a/" -> "runs/a"
  if (!fs::exists(folder)) return "";
  // A folder that a running train holds is not moved out from under it: the
  // lock names the holder. Held across the rename so none can start between.
  std::optional<FolderLock> lock;
  if (fs::is_directory(folder)) lock.emplace(folder.string());
  for (int n = 1;; ++n) {
    const fs::path aside = folder.string() + ".old-" + std::to_string(n);
    if (fs::exists(aside)) continue;
    fs::rename(folder, aside);
    return aside.string();
  }
}

data::TokenLoader resume_run_loader(const TrainConfig& config, const data::LoaderCursor& cursor) {
  data::TokenLoader loader = make_run_loader(config.data.train, config, config.data.shuffle);
  loader.restore(cursor);
  return loader;
}

}  // namespace muonlab::training
