// bench's background load: the processes it starts really use the CPU, and
// none outlives its owner, whether the owner stops them or dies.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "muonlab/core/busy_load.h"
#include "muonlab/core/errors.h"

namespace muonlab {
namespace {

// A process's state letter and its user-mode CPU time in clock ticks, from
// /proc/<pid>/stat (fields 3 and 14); state 'X' when the process is gone.
struct ProcessSample {
  char state = 'X';
  long long user_ticks = 0;
};

ProcessSample sample_process(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(file, text)) return {};
  // The command name may hold spaces and parentheses: fields follow the last ')'.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  ProcessSample sample;
  std::string skip;
  fields >> sample.state;
  for (int field = 4; field < 14; ++field) fields >> skip;
  fields >> sample.user_ticks;
  return sample;
}

bool gone(pid_t pid) {
  const char state = sample_process(pid).state;
  return state == 'X' || state == 'Z';  // a zombie left to a reaper that does not reap is dead too
}

TEST(BusyLoad, ItsProcessesSpinUntilStopped) {
  std::vector<pid_t> pids;
  {
    BusyLoad load(2);
    pids = load.pids();
    ASSERT_EQ(pids.size(), 2u);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (const pid_t pid : pids) {
      const ProcessSample sample = sample_process(pid);
      EXPECT_EQ(sample.state, 'R') << "busy process " << pid;
      // 100 ticks a second: 4 is 40 ms of the 500, low enough for a test
      // machine busy with other tests.
      EXPECT_GE(sample.user_ticks, 4) << "busy process " << pid << " hardly ran";
    }
  }
  for (const pid_t pid : pids) EXPECT_TRUE(gone(pid)) << "busy process " << pid << " outlived its BusyLoad";
}

TEST(BusyLoad, NoneStartsNothingAndANegativeCountIsRefused) {
  EXPECT_TRUE(BusyLoad(0).pids().empty());
  EXPECT_THROW(BusyLoad(-1), Error);
}

TEST(BusyLoad, ItsProcessesDieWithTheirOwner) {
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    // The owner ends without running BusyLoad's destructor, as a crash would.
    auto* load = new BusyLoad(1);
    const pid_t busy = load->pids().front();
    const bool written = ::write(pipe_ends[1], &busy, sizeof busy) == sizeof busy;
    ::_exit(written ? 0 : 1);
  }
  ::close(pipe_ends[1]);
  pid_t busy = 0;
  ASSERT_EQ(::read(pipe_ends[0], &busy, sizeof busy), static_cast<ssize_t>(sizeof busy));
  ::close(pipe_ends[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!gone(busy) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone(busy)) << "busy process " << busy << " outlived its owner";
}

}  // namespace
}  // namespace muonlab
