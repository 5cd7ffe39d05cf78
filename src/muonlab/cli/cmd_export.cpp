// `muonlab export --hf RUN_DIR OUT [--weights FILE] [--force]`: a training
// run's model in another program's format. One flag per format; today only
// --hf, a Hugging Face folder for transformers' GPT2LMHeadModel or (the
// LLaMA family) LlamaForCausalLM.
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <iostream>
#include <memory>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/hf_gpt2_export.h"

namespace muonlab::cli {
namespace {

struct ExportArgs {
  bool hf = false;
  std::string run_dir;
  std::string out_dir;
  std::string weights;
  bool force = false;
};

void print_hf_summary(const training::HfExportResult& result, const std::string& out_dir) {
  const auto& model = result.model;
  std::cout << fmt::format("exported {} ({} layers, d_model {}, {} heads, vocab {}, context {}) from {}\n", model.name,
                           model.n_layer, model.d_model, model.n_head, model.vocab_size, model.block_size,
                           result.weights_path)
            << fmt::format("as Hugging Face {} into {}: {} tensors, {} parameters, fp32\n", result.architecture,
                           out_dir, result.tensors, result.parameters)
            << fmt::format("files: {}\n", fmt::join(result.files, ", "));
  if (!result.tokenizer_note.empty()) std::cout << "no tokenizer files: " << result.tokenizer_note << "\n";
  std::cout << fmt::format("load with: transformers.AutoModelForCausalLM.from_pretrained(\"{}\")  # {}\n", out_dir,
                           result.architecture);
}

void run_export(const ExportArgs& args) {
  if (args.hf) {
    training::HfExportOptions options;
    options.run_dir = args.run_dir;
    options.out_dir = args.out_dir;
    options.weights = args.weights;
    options.force = args.force;
    print_hf_summary(training::export_hf(options), args.out_dir);
  }
}

}  // namespace

void register_export(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* command = app.add_subcommand("export", "Write a training run's model in another format");
  add_examples(*command, {
                    "muonlab export runs/cpu-small runs/cpu-small-hf --hf"});
  // Exactly one format flag; a new format adds its flag to this group.
  auto* format = command->add_option_group("format", "Output format (one of)");
  format->add_flag("--hf", args->hf, "Hugging Face GPT-2 or LLaMA: model.safetensors, config.json, tokenizer files");
  format->require_option(1);
  command->add_option("run_dir", args->run_dir, "Run folder written by muonlab train (config.toml, weights)")
      ->required();
  command->add_option("out", args->out_dir, "Output folder (must not exist or be empty, unless --force)")
      ->required();
  command->add_option("--weights", args->weights,
                      "Safetensors weights of the run's model (default: RUN_DIR/model.safetensors, else the "
                      "newest checkpoint's)");
  command->add_flag("--force", args->force, "Replace a non-empty output folder");
  command->callback([args] { run_export(*args); });
}

}  // namespace muonlab::cli
