#include "muonlab/distributed/launcher.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "muonlab/core/child_process.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/threads.h"

extern char** environ;

namespace muonlab::distributed {
namespace {

// This process's environment with the rank's variables set (replacing any
// inherited ones) and its share of the cores (core/threads.h).
std::vector<std::string> rank_environment(const LaunchOptions& options, int64_t rank, int64_t port) {
  const std::map<std::string, std::string> rank_vars = {
      {"RANK", std::to_string(rank)},           {"LOCAL_RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(options.processes)}, {"LOCAL_WORLD_SIZE", std::to_string(options.processes)},
      {"MASTER_ADDR", options.master_addr},     {"MASTER_PORT", std::to_string(port)}};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (rank_vars.count(entry.substr(0, entry.find('='))) == 0) env.push_back(entry);
  }
  for (const auto& [name, value] : rank_vars) env.push_back(name + "=" + value);
  return with_thread_budget(env, static_cast<int>(options.processes));
}

pid_t spawn_rank(const std::string& binary, const LaunchOptions& options, int64_t rank, int64_t port) {
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), options.command.begin(), options.command.end());
  const auto env = rank_environment(options, rank, port);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int code = posix_spawn(&pid, binary.c_str(), nullptr, nullptr, args.data(), envp.data());
  if (code != 0) fail("launch: cannot start rank {} ('{}'): {}", rank, binary, std::strerror(code));
  return pid;
}

// SIGTERM to every rank still running, SIGKILL to those left after `grace`.
void stop_ranks(std::map<pid_t, int64_t>& running, std::chrono::milliseconds grace) {
  for (const auto& [pid, rank] : running) ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!running.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      running.erase(pid);
    } else if (std::chrono::steady_clock::now() >= deadline) {
      for (const auto& [left, rank] : running) ::kill(left, SIGKILL);
      for (const auto& [left, rank] : running) ::waitpid(left, &status, 0);
      running.clear();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace

int64_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("launch: cannot open a socket to find a free port: {}", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!ok) fail("launch: cannot find a free port: {}", std::strerror(errno));
  return ntohs(address.sin_port);
}

LaunchResult launch(const LaunchOptions& options, std::ostream& log) {
  if (options.processes < 1) fail("launch: -n {}: expected 1 or more processes", options.processes);
  if (options.command.empty()) fail("launch: no command: give one after --, e.g. launch -n 2 -- train --config X");
  const int64_t port = options.master_port > 0 ? options.master_port : free_tcp_port();
  const std::string binary = this_executable("launch");
  // The ranks stop (at a checkpoint) if the launcher dies, even by SIGKILL.
  adopt_children_started_from_here();
  std::map<pid_t, int64_t> running;  // pid -> rank
  for (int64_t rank = 0; rank < options.processes; ++rank) running[spawn_rank(binary, options, rank, port)] = rank;
  log << fmt::format("launch: {} ranks, MASTER_ADDR={} MASTER_PORT={}\n", options.processes, options.master_addr, port);

  LaunchResult result;
  // SIGINT or SIGTERM sent to the launcher is passed on to the ranks (which
  // checkpoint and stop together) instead of leaving them orphaned.
  ForwardedSignals signals;
  bool forwarded = false;  // the ranks were told to stop: let them finish, kill none
  while (!running.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno != EINTR) fail("launch: waitpid failed: {}", std::strerror(errno));
      if (const int signal = ForwardedSignals::received(); signal != 0 && !forwarded) {
        log << fmt::format("launch: {}: passed on to the {} rank(s)\n", strsignal(signal), running.size());
        for (const auto& [rank_pid, rank] : running) ::kill(rank_pid, signal);
        forwarded = true;
      }
      continue;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const int64_t rank = it->second;
    running.erase(it);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    if (result.exit_code != 0) continue;  // the first failure is the one reported
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.failed_rank = rank;
    result.failure = fmt::format("rank {}: {}", rank, describe_exit(status));
    if (forwarded) continue;
    log << fmt::format("launch: {}; stopping the other {} rank(s)\n", result.failure, running.size());
    stop_ranks(running, options.grace);
  }
  return result;
}

}  // namespace muonlab::distributed
