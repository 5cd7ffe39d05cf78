// Processes that keep cores busy while a benchmark runs, so that "on a
// loaded machine" is a condition anyone can reproduce with one option
// instead of whatever else happened to be running.
//
// Each process spins in a plain loop: no OpenMP, no memory traffic, the
// kind of load a compiler or a data job puts on the cores. (Two OpenMP
// programs on the same cores behave differently: whichever spins at its
// barriers keeps the cores, docs/benchmarks.md.)
#pragma once

#include <sys/types.h>

#include <vector>

namespace muonlab {

class BusyLoad {
 public:
  // Starts `processes` busy-loop children (0: none). Each dies with this
  // process, even if it is killed.
  explicit BusyLoad(int processes);
  // Kills the children and reaps them.
  ~BusyLoad();
  BusyLoad(const BusyLoad&) = delete;
  BusyLoad& operator=(const BusyLoad&) = delete;

  const std::vector<pid_t>& pids() const { return pids_; }

 private:
  void stop();

  std::vector<pid_t> pids_;
};

}  // namespace muonlab
