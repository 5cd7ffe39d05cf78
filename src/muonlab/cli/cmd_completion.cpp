// muonlab completion SHELL: prints a completion script for bash or zsh.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/shell_completion.h"
#include "muonlab/models/model_config.h"

namespace muonlab::cli {

namespace {

// Options whose values are names worth completing; any other option that
// takes a value completes file names.
std::map<std::string, std::vector<std::string>> option_values() {
  return {{"--preset", models::preset_names()},
          {"--device", {"cpu", "cuda"}},
          {"--tokenizer", {"gpt2", "byte"}}};
}

}  // namespace

void register_completion(CLI::App& app) {
  auto shell = std::make_shared<std::string>("bash");
  CLI::App* command = app.add_subcommand(
      "completion", "Print a shell completion script (subcommands, options, presets): source <(muonlab completion bash)");
  command->add_option("shell", *shell, "bash, or zsh (through its bashcompinit)")
      ->check(CLI::IsMember({"bash", "zsh"}));
  command->callback([&app, shell] {
    // zsh runs bash's completion functions once bashcompinit has loaded.
    if (*shell == "zsh") std::cout << "autoload -U +X bashcompinit && bashcompinit\n";
    std::cout << bash_completion_script(app, "muonlab", option_values());
  });
}

}  // namespace muonlab::cli
