#include "muonlab/cli/suggest.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <algorithm>

#include "muonlab/core/nearest_name.h"

namespace muonlab::cli {

namespace {

std::vector<std::string> subcommand_names(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  return names;
}

std::vector<std::string> long_flags(CLI::App& app) {
  std::vector<std::string> flags;
  for (const CLI::Option* option : app.get_options()) {
    for (const auto& name : option->get_lnames()) flags.push_back("--" + name);
  }
  return flags;
}

// "muonlab data" for the `data` subcommand.
std::string command_path(CLI::App& app) {
  std::string path = app.get_parent() == nullptr ? "muonlab" : app.get_name();
  for (CLI::App* parent = app.get_parent(); parent != nullptr; parent = parent->get_parent()) {
    path = (parent->get_parent() == nullptr ? "muonlab" : parent->get_name()) + " " + path;
  }
  return path;
}

}  // namespace

std::string suggestion(CLI::App& app, int argc, char** argv) {
  CLI::App* current = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;  // what follows belongs to another program (launch)
    if (word.rfind("--", 0) == 0) {
      const std::string flag = word.substr(0, word.find('='));
      if (current->get_option_no_throw(flag) != nullptr) continue;
      const std::string near = nearest_name(flag, long_flags(*current));
      return near.empty() ? "" : fmt::format("did you mean '{}'?", near);
    }
    if (word.rfind('-', 0) == 0) continue;
    const auto subcommands = subcommand_names(*current);
    if (subcommands.empty()) continue;  // a positional value
    if (std::find(subcommands.begin(), subcommands.end(), word) != subcommands.end()) {
      current = current->get_subcommand(word);
      continue;
    }
    // Only the first word after a command with subcommands can name one.
    if (i > 1 && std::string(argv[i - 1]).rfind('-', 0) == 0) continue;
    const std::string near = nearest_name(word, subcommands);
    if (!near.empty()) return fmt::format("did you mean '{}'?", near);
    return fmt::format("'{}' is not a subcommand of '{}': expected one of {}", word, command_path(*current),
                       fmt::join(subcommands, ", "));
  }
  return "";
}

std::string unknown_subcommand_message(CLI::App& app, const std::string& word) {
  const auto subcommands = subcommand_names(app);
  if (std::find(subcommands.begin(), subcommands.end(), word) != subcommands.end()) return "";
  const std::string near = nearest_name(word, subcommands);
  return fmt::format("'{}' is not a muonlab subcommand{}", word,
                     near.empty() ? "" : fmt::format("; did you mean '{}'?", near));
}

}  // namespace muonlab::cli
