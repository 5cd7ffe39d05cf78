#include <iostream>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/core/version.h"

namespace muonlab::cli {

void register_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print muonlab's version, LibTorch's, and devices");
  add_examples(*cmd, {
                    "muonlab version"});
  cmd->callback([] { std::cout << build_report(); });
}

}  // namespace muonlab::cli
