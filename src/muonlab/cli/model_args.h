// Command-line options shared by the subcommands that build a model: a
// preset or a model file, config overrides, and a seed.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/train_config.h"

namespace muonlab::cli {

struct ModelArgs {
  std::string preset;
  std::string model_file;
  std::vector<std::string> overrides;  // --set key=value
  uint64_t init_seed = 0;
  std::string device = "cpu";

  // Adds --preset, --set and --init-seed (and --model, --device if asked).
  void add_to(CLI::App& command, bool with_model_file, bool with_device);
  // Also takes the model as the first positional argument, as `muonlab
  // eval runs/x` (after add_to with the model file; one of the two forms).
  void add_positional_model(CLI::App& command);
  models::ModelConfig config() const;
  // The preset freshly initialized from init_seed, or the model file loaded.
  models::Transformer build() const;
  torch::Device torch_device() const;
  // The training run's config where --model names a run (its folder, or
  // weights inside it), so that commands can default to what the run used.
  std::optional<training::TrainConfig> run_config() const;
  // The tokenizer a Hugging Face folder given as the model ships (the folder,
  // where it holds a tokenizer.json), else nullopt.
  std::optional<std::string> bundled_tokenizer() const;

 private:
  CLI::Option* model_option_ = nullptr;
};

}  // namespace muonlab::cli
