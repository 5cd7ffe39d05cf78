#include "muonlab/core/busy_load.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>

#include "muonlab/core/errors.h"

namespace muonlab {

namespace {

// The child's whole life: only async-signal-safe calls after fork() in a
// process that has other threads (OpenMP's), then a loop until killed.
[[noreturn]] void spin_until_killed(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);  // the parent died before the request
  volatile std::uint64_t spins = 0;  // volatile: the loop is not optimized away
  for (;;) spins = spins + 1;
}

}  // namespace

BusyLoad::BusyLoad(int processes) {
  if (processes < 0) fail("background load: {} processes, expected 0 or more", processes);
  const pid_t parent = ::getpid();
  for (int i = 0; i < processes; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) spin_until_killed(parent);
    if (pid < 0) {
      const int error = errno;
      stop();
      fail("background load: cannot start busy process {} of {}: {}", i + 1, processes, std::strerror(error));
    }
    pids_.push_back(pid);
  }
}

BusyLoad::~BusyLoad() { stop(); }

void BusyLoad::stop() {
  for (const pid_t pid : pids_) ::kill(pid, SIGKILL);
  for (const pid_t pid : pids_) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pids_.clear();
}

}  // namespace muonlab
