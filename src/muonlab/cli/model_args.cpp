#include "muonlab/cli/model_args.h"

#include <filesystem>

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include "muonlab/cli/device_option.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/hf_import.h"
#include "muonlab/models/model_file.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/run_folder.h"

namespace muonlab::cli {

void ModelArgs::add_to(CLI::App& command, bool with_model_file, bool with_device) {
  command.add_option("--preset", preset, "Model preset: " +
                                             fmt::format("{}", fmt::join(models::preset_names(), ", ")));
  command.add_option("--set", overrides,
                     "Config override key=value, repeatable (e.g. --set n_layer=4 --set "
                     "moe.top_k=2)");
  command.add_option("--init-seed", init_seed, "Seed of the random initialization");
  if (with_model_file) {
    model_option_ = command.add_option("--model", model_file,
                                       "Model: a file from `muonlab model init`, a run folder of muonlab train, "
                                       "weights (.safetensors) in one, or a Hugging Face GPT-2 or LLaMA folder "
                                       "(config.json, model.safetensors)");
  }
  if (with_device) command.add_option("--device", device, "cpu, cuda or cuda:N");
}

void ModelArgs::add_positional_model(CLI::App& command) {
  if (model_option_ == nullptr) fail("add_positional_model: call add_to with the model file first");
  command.add_option("model_path", model_file, "The model, as --model: a run folder, its weights or a model file")->excludes(model_option_);
}

namespace {

bool names_train_config(const std::string& model_file) {
  return std::filesystem::path(model_file).extension() == ".toml";
}

// A train config names a model's shape (config() reads it) but holds no
// weights; LibTorch would only say that the file is not a zip archive.
void refuse_a_train_config(const std::string& model_file) {
  if (!names_train_config(model_file)) return;
  fail("'{}' is a TOML config, not a model: train it (`muonlab train {}`) and give the run folder, or give a model "
       "file from `muonlab model init`",
       model_file, model_file);
}

}  // namespace

models::ModelConfig ModelArgs::config() const {
  if (!model_file.empty()) {
    if (!preset.empty()) fail("--model and --preset: give one of them, not both");
    if (names_train_config(model_file)) {
      // A train config: the model it trains, with --set applied to its [model].
      std::vector<std::string> model_overrides;
      for (const auto& assignment : overrides) model_overrides.push_back("model." + assignment);
      return training::load_train_config(model_file, model_overrides).model;
    }
    auto config = training::names_hf_model(model_file)     ? training::hf_model_config(model_file)
                  : training::names_run_model(model_file) ? training::run_model_config(model_file)
                                                          : models::read_model_config(model_file);
    if (!overrides.empty()) fail("--set cannot change a model loaded with --model");
    return config;
  }
  if (preset.empty()) fail("no model: give --preset NAME (or --model FILE)");
  auto config = models::model_preset(preset);
  for (const auto& assignment : overrides) models::apply_override(config, assignment);
  config.validate();
  return config;
}

torch::Device ModelArgs::torch_device() const { return device_from_option(device); }

std::optional<training::TrainConfig> ModelArgs::run_config() const {
  if (model_file.empty() || !training::names_run_model(model_file) || training::names_hf_model(model_file)) {
    return std::nullopt;
  }
  return training::load_run_config(training::run_folder_of_model(model_file));
}

std::optional<std::string> ModelArgs::bundled_tokenizer() const {
  if (model_file.empty() || !training::names_hf_model(model_file)) return std::nullopt;
  if (!std::filesystem::is_regular_file(std::filesystem::path(model_file) / "tokenizer.json")) return std::nullopt;
  return model_file;
}

models::Transformer ModelArgs::build() const {
  const auto device = torch_device();
  if (!model_file.empty()) {
    refuse_a_train_config(model_file);
    auto model = training::names_hf_model(model_file)    ? training::import_hf_model(model_file).model
                 : training::names_run_model(model_file) ? training::load_run_model(model_file)
                                                         : models::load_model(model_file);
    model->to(device);
    return model;
  }
  torch::manual_seed(init_seed);
  models::Transformer model(config());
  model->to(device);
  return model;
}

}  // namespace muonlab::cli
