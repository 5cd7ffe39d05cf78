// Runs another program and collects what it prints. The program is looked up
// on PATH and started without a shell, so arguments (paths with spaces or
// quotes) pass through as they are and need no quoting.
#pragma once

#include <string>
#include <vector>

namespace muonlab {

struct CommandResult {
  bool found = true;     // false: argv[0] is not on PATH (nothing ran)
  int exit_status = 0;   // the exit code; 128 + the signal number when a signal ended it
  std::string output;    // stdout and stderr together, in the order written
};

// Waits for the program to finish. Its stdin is /dev/null. Fails only when
// the program cannot be started for a reason other than not being found.
CommandResult run_command(const std::vector<std::string>& argv);

}  // namespace muonlab
