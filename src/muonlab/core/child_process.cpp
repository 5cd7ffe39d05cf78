#include "muonlab/core/child_process.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "muonlab/core/errors.h"

namespace muonlab {
namespace {

// The variable through which a child learns its parent's pid: the
// parent-death signal alone cannot tell whether the parent died before the
// child asked for it.
constexpr const char* kParentPidVariable = "MUONLAB_PARENT_PID";

volatile std::sig_atomic_t received_signal = 0;

extern "C" void note_signal(int signal) { received_signal = signal; }

}  // namespace

std::string this_executable(const std::string& who) {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) fail("{}: cannot find this executable (/proc/self/exe): {}", who, error.message());
  return self.string();
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

void adopt_children_started_from_here() { ::setenv(kParentPidVariable, std::to_string(::getpid()).c_str(), 1); }

void stop_with_parent() {
  const char* parent = std::getenv(kParentPidVariable);
  if (parent == nullptr) return;
  const pid_t expected_parent = static_cast<pid_t>(std::atoll(parent));
  // Not inherited further: this process's own children have another parent.
  ::unsetenv(kParentPidVariable);
  // Asked before looking, so that a parent dying in between is seen either way.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() == expected_parent) return;
  const bool parent_gone = ::kill(expected_parent, 0) != 0 && errno == ESRCH;
  if (parent_gone) ::raise(SIGTERM);
  // Started by the marked process's descendants (a shell, say), not by it:
  // the immediate parent's death means nothing here.
  ::prctl(PR_SET_PDEATHSIG, 0);
}

ForwardedSignals::ForwardedSignals() {
  received_signal = 0;
  struct sigaction action {};
  action.sa_handler = note_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &previous_int_);
  ::sigaction(SIGTERM, &action, &previous_term_);
}

ForwardedSignals::~ForwardedSignals() {
  ::sigaction(SIGINT, &previous_int_, nullptr);
  ::sigaction(SIGTERM, &previous_term_, nullptr);
}

int ForwardedSignals::received() { return received_signal; }

}  // namespace muonlab
