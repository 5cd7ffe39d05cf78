#pragma once
// What `sweep` and `launch` share as parents of `muonlab` child processes:
// finding this executable, describing how a child ended, passing SIGINT and
// SIGTERM on to the children instead of leaving them orphaned, and making
// every child stop when its parent dies, even by SIGKILL.
#include <sys/types.h>

#include <csignal>
#include <string>

namespace muonlab {

// The path of the running executable, to start children of the same build.
// `who` prefixes the error ("sweep", "launch").
std::string this_executable(const std::string& who);

// "exit code N" or "killed by signal N (name)" for a waitpid status.
std::string describe_exit(int status);

// Marks this process as the parent of the children it starts from now on:
// a `muonlab` child that calls stop_with_parent() gets SIGTERM (and so
// checkpoints and stops) when this process ends, however it ends.
void adopt_children_started_from_here();

// In a child started after adopt_children_started_from_here(): asks the
// kernel for SIGTERM when the parent dies (Linux's parent-death signal), and
// stops now if the parent died before this call. A no-op otherwise.
void stop_with_parent();

// While alive, SIGINT and SIGTERM are noted instead of killing this process,
// without SA_RESTART, so that a blocking waitpid returns EINTR and the parent
// can pass the signal on to its children; the previous handlers come back at
// scope end.
class ForwardedSignals {
 public:
  ForwardedSignals();
  ~ForwardedSignals();
  ForwardedSignals(const ForwardedSignals&) = delete;
  ForwardedSignals& operator=(const ForwardedSignals&) = delete;

  // The signal received since construction, or 0.
  static int received();

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace muonlab
