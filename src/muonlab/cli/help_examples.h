// The "Examples:" footer of a subcommand's --help, one command per line.
#pragma once

#include <CLI/CLI.hpp>

#include <initializer_list>
#include <string>

namespace muonlab::cli {

inline void add_examples(CLI::App& command, std::initializer_list<const char*> lines) {
  std::string footer = "\nExamples:";
  for (const char* line : lines) footer += std::string("\n  ") + line;
  command.footer(footer);
}

}  // namespace muonlab::cli
