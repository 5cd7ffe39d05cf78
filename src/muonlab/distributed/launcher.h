// `muonlab launch -n N -- COMMAND...`: starts N copies of a muonlab command
// on this machine as the ranks of one group, as torchrun does (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in each one's
// environment), and watches them: when one rank fails, the others are
// stopped (SIGTERM, then SIGKILL after a grace period) and the failure is
// reported by rank, so no rank waits forever on a dead peer. SIGINT or
// SIGTERM to the launcher is passed on to every rank (training ranks then
// checkpoint and stop together) and the launcher waits for them all.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace muonlab::distributed {

struct LaunchOptions {
  int64_t processes = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 0;  // 0: a free port picked here
  std::vector<std::string> command;  // muonlab's arguments, e.g. {"train", "--config", "x.toml"}
  std::chrono::milliseconds grace{10000};  // between SIGTERM and SIGKILL
};

struct LaunchResult {
  int exit_code = 0;        // 0 when every rank succeeded
  int64_t failed_rank = -1;  // the first rank seen failing
  std::string failure;       // "rank 1: exit code 3", empty on success
};

LaunchResult launch(const LaunchOptions& options, std::ostream& log);

// A TCP port free on this machine now (bound to port 0, read back, closed).
int64_t free_tcp_port();

}  // namespace muonlab::distributed
