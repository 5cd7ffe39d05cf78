// `muonlab launch -n N [--master-port P] -- COMMAND...`: N ranks of a
// muonlab command on this machine (distributed/launcher.h).
#include <iostream>
#include <memory>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/number_checks.h"
#include "muonlab/cli/suggest.h"
#include "muonlab/core/errors.h"
#include "muonlab/distributed/launcher.h"

namespace muonlab::cli {

void register_launch(CLI::App& app) {
  auto options = std::make_shared<distributed::LaunchOptions>();
  auto grace_seconds = std::make_shared<double>(10.0);
  auto* command = app.add_subcommand(
      "launch", "Run N ranks of a muonlab command on this machine, torchrun-style; one failing stops the rest");
  add_examples(*command, {
                    "muonlab launch -n 2 -- train --config configs/cpu-small.toml",
                    "muonlab launch -n 4 --master-port 29500 -- train --config run.toml --resume"});
  command->add_option("-n,--nproc", options->processes, "Ranks (processes)")->required()->check(CLI::Range(1, 4096))->default_str("");
  command->add_option("--master-addr", options->master_addr, "Address of rank 0's store")->capture_default_str();
  command->add_option("--master-port", options->master_port, "Port of rank 0's store (0: a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  command->add_option("--grace", *grace_seconds, "Seconds between SIGTERM and SIGKILL for the ranks left")
      ->check(kNonNegative)
      ->capture_default_str();
  command->add_option("command", options->command, "The muonlab command each rank runs, after --")->required();
  command->callback([command, options, grace_seconds] {
    // Checked here, once, rather than failing in every rank.
    const std::string& first = options->command.front();
    if (first.rfind('-', 0) != 0) {
      const std::string unknown = unknown_subcommand_message(*command->get_parent(), first);
      if (!unknown.empty()) fail("launch: {}", unknown);
    }
    options->grace = std::chrono::milliseconds(static_cast<int64_t>(*grace_seconds * 1000));
    const auto result = distributed::launch(*options, std::cerr);
    if (result.exit_code != 0) fail("launch: {}", result.failure);
  });
}

}  // namespace muonlab::cli
