#include "muonlab/cli/shell_completion.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

#include <algorithm>
#include <cctype>
#include <functional>

namespace muonlab::cli {

namespace {

// CLI11 puts options and subcommands registered with group("") nowhere in
// --help: internal ones (a rank's --worker), not for users to type.
bool hidden(const std::string& group) { return group.empty(); }

// CLI11 keeps option groups (add_option_group) as nameless subcommands:
// their options are the command's own.
bool option_group(const CLI::App& sub) { return sub.get_name().empty(); }

std::vector<const CLI::App*> children(const CLI::App& command) {
  return command.get_subcommands([](const CLI::App*) { return true; });
}

void add_options(const CLI::App& command, CompletionNode& node) {
  for (const CLI::Option* option : command.get_options()) {
    if (option->get_positional() || hidden(option->get_group())) continue;
    std::vector<std::string> names;
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
    for (const auto& name : option->get_snames()) names.push_back("-" + name);
    // An option group repeats its parent's --help.
    if (std::find(node.options.begin(), node.options.end(), names.front()) != node.options.end()) continue;
    node.options.insert(node.options.end(), names.begin(), names.end());
    // A flag expects no value (CLI11's add_flag sets expected(0)).
    if (option->get_expected_min() > 0) {
      node.valued_options.insert(node.valued_options.end(), names.begin(), names.end());
    }
  }
  for (const CLI::App* sub : children(command)) {
    if (option_group(*sub)) add_options(*sub, node);
  }
}

CompletionNode node_of(const CLI::App& command) {
  CompletionNode node;
  for (const CLI::App* sub : children(command)) {
    if (!option_group(*sub) && !hidden(sub->get_group())) node.subcommands.push_back(sub->get_name());
  }
  add_options(command, node);
  return node;
}

// Words for bash's `compgen -W`: names hold no spaces or quotes.
std::string words(const std::vector<std::string>& names) { return fmt::format("{}", fmt::join(names, " ")); }

std::string function_name(const std::string& program) {
  std::string name = "_" + program;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// `case` arms setting the node's word lists, one per command path.
std::string node_table(const std::map<std::string, CompletionNode>& tree) {
  std::string arms;
  for (const auto& [path, node] : tree) {
    arms += fmt::format("    \"{}\") subcommands=\"{}\" options=\"{}\" valued=\"{}\" ;;\n", path,
                        words(node.subcommands), words(node.options), words(node.valued_options));
  }
  return arms;
}

// `case "COMMAND|OPTION"` arms, in the order given, so a command's own
// entry comes before a "*" one.
std::string value_table(const std::vector<OptionValues>& option_values) {
  std::string arms;
  for (const auto& entry : option_values) {
    const std::string pattern = entry.command == "*" ? fmt::format("*\"|{}\"", entry.option)
                                                     : fmt::format("\"{}|{}\"", entry.command, entry.option);
    arms += fmt::format("    {}) values=\"{}\" ;;\n", pattern, words(entry.values));
  }
  return arms;
}

}  // namespace

std::map<std::string, CompletionNode> completion_tree(const CLI::App& root) {
  std::map<std::string, CompletionNode> tree;
  std::function<void(const CLI::App&, const std::string&)> visit = [&](const CLI::App& command,
                                                                       const std::string& path) {
    tree[path] = node_of(command);
    for (const CLI::App* sub : children(command)) {
      if (option_group(*sub) || hidden(sub->get_group())) continue;
      visit(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name());
    }
  };
  visit(root, "");
  return tree;
}

std::string bash_completion_script(const CLI::App& root, const std::string& program,
                                   const std::vector<OptionValues>& option_values) {
  const std::string fn = function_name(program);
  return fmt::format(R"(# bash completion for {program}, written by `{program} completion bash`.
#   source <({program} completion bash)          # this shell
#   {program} completion bash > ~/.local/share/bash-completion/completions/{program}   # every new one
{fn}_node() {{
  case $1 in
{nodes}    *) subcommands="" options="" valued="" ;;
  esac
}}

{fn}_values() {{
  case "$1|$2" in
{values}    *) values="" ;;
  esac
}}

{fn}() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  local path="" word i subcommands options valued values
  COMPREPLY=()
  {fn}_node ""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${{COMP_WORDS[i]}}
    # After launch's --, the command each rank runs: {program}'s own, from the top.
    if [[ $word == -- ]]; then path="" && {fn}_node "" && continue; fi
    # A subcommand's name, unless it is the value of the option before it.
    if [[ " $subcommands " == *" $word "* && " $valued " != *" ${{COMP_WORDS[i-1]}} "* ]]; then
      path=${{path:+$path }}$word
      {fn}_node "$path"
    fi
  done
  if [[ " $valued " == *" $prev "* ]]; then
    {fn}_values "$path" "$prev"
    [[ -n $values ]] && COMPREPLY=($(compgen -W "$values" -- "$cur"))
    # A `--set` key goes on with its value: no space after the '='.
    if [[ ${{#COMPREPLY[@]}} == 1 && ${{COMPREPLY[0]}} == *= ]]; then compopt -o nospace 2>/dev/null || true; fi
    return 0  # no values of its own: file names (complete -o default)
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$options" -- "$cur"))
  elif [[ -n $subcommands ]]; then
    COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
  fi
}}
complete -o default -F {fn} {program}
)",
                     fmt::arg("program", program), fmt::arg("fn", fn),
                     fmt::arg("nodes", node_table(completion_tree(root))),
                     fmt::arg("values", value_table(option_values)));
}

}  // namespace muonlab::cli
