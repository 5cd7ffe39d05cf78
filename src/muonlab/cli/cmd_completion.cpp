// muonlab completion SHELL: prints a completion script for bash or zsh.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/shell_completion.h"
#include "muonlab/models/model_config.h"
#include "muonlab/training/train_config.h"

namespace muonlab::cli {

namespace {

// `--set KEY=`: every key, with its '='.
std::vector<std::string> assignments(const std::vector<std::string>& keys) {
  std::vector<std::string> words;
  for (const auto& key : keys) words.push_back(key + "=");
  return words;
}

// Options whose values are names worth completing; any other option that
// takes a value completes file names.
std::vector<OptionValues> option_values() {
  const auto config_keys = assignments(training::config_keys());
  const auto model_fields = assignments(models::config_field_names());
  std::vector<OptionValues> values{{"train", "--set", config_keys}, {"sweep", "--set", config_keys}};
  for (const char* command : {"model info", "model init", "generate", "eval", "bench train"}) {
    values.push_back({command, "--set", model_fields});
  }
  values.push_back({"*", "--preset", models::preset_names()});
  values.push_back({"*", "--device", {"cpu", "cuda"}});
  values.push_back({"*", "--tokenizer", {"gpt2", "byte"}});
  return values;
}

}  // namespace

void register_completion(CLI::App& app) {
  auto shell = std::make_shared<std::string>("bash");
  CLI::App* command = app.add_subcommand(
      "completion",
      "Print a shell completion script (subcommands, options, presets, --set keys): source <(muonlab completion bash)");
  command->add_option("shell", *shell, "bash, or zsh (through its bashcompinit)")
      ->check(CLI::IsMember({"bash", "zsh"}));
  command->callback([&app, shell] {
    // zsh runs bash's completion functions once bashcompinit has loaded.
    if (*shell == "zsh") std::cout << "autoload -U +X bashcompinit && bashcompinit\n";
    std::cout << bash_completion_script(app, "muonlab", option_values());
  });
}

}  // namespace muonlab::cli
