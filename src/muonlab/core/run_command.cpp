#include "muonlab/core/run_command.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "muonlab/core/errors.h"

extern char** environ;

namespace muonlab {
namespace {

// Owns a posix_spawn file-actions object for the scope of one spawn.
class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

std::string read_until_end(int fd) {
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return text;
    }
  }
}

int wait_for_exit_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("waiting for process {} failed: {}", pid, std::strerror(errno));
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv) {
  if (argv.empty()) fail("run_command: no program given");
  // Close-on-exec, so neither end leaks into this child (dup2 clears the flag
  // on the copies it makes) or into children other threads start meanwhile.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail("cannot create a pipe: {}", std::strerror(errno));
  SpawnActions actions;
  posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(actions.get(), pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), pipe_fds[1], STDERR_FILENO);

  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawn_error = ::posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), environ);
  ::close(pipe_fds[1]);
  CommandResult result;
  if (spawn_error != 0) {
    ::close(pipe_fds[0]);
    if (spawn_error == ENOENT) {
      result.found = false;
      return result;
    }
    fail("cannot run '{}': {}", argv[0], std::strerror(spawn_error));
  }
  // Read to the end before waiting: a child that fills the pipe would
  // otherwise block forever on its write while we block in waitpid.
  result.output = read_until_end(pipe_fds[0]);
  ::close(pipe_fds[0]);
  result.exit_status = wait_for_exit_status(pid);
  return result;
}

}  // namespace muonlab
