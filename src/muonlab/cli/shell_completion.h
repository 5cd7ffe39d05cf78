// Shell completion for muonlab, written from the CLI11 command tree itself,
// so that every subcommand and option registered is completed and none that
// is gone: `muonlab completion bash` (or zsh, through bashcompinit).
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <string>
#include <vector>

namespace muonlab::cli {

// What a command completes: its subcommands, its options (long and short
// names), which of those take a value (their value is then a file, or one
// of `values`), in the order registered; hidden ones left out.
struct CompletionNode {
  std::vector<std::string> subcommands;
  std::vector<std::string> options;
  std::vector<std::string> valued_options;
};

// Every command of the tree by its path below the root ("" for muonlab,
// "bench optim" for `muonlab bench optim`).
std::map<std::string, CompletionNode> completion_tree(const CLI::App& root);

// The values an option completes: after `option` of `command` (a path as
// completion_tree's, or "*" for every command), the first entry that
// matches gives `values`. A value ending in '=' (a `--set` key) is completed
// without the space after it.
struct OptionValues {
  std::string command;
  std::string option;
  std::vector<std::string> values;
};

// A bash completion script for `program`: subcommands and options by the
// command they follow; after an option that takes a value, its
// `option_values` or, where it has none, file names.
std::string bash_completion_script(const CLI::App& root, const std::string& program,
                                   const std::vector<OptionValues>& option_values);

}  // namespace muonlab::cli
