// What `muonlab sweep SPEC --list` says of each run: its state now, read
// from its folder (and, for a run that failed, the sweep's index), so that
// a long sweep can be followed from another terminal without touching it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "muonlab/sweep/sweep_index.h"
#include "muonlab/sweep/sweep_spec.h"

namespace muonlab::sweep {

struct RunStatus {
  std::string id;
  // "done", "running" (a process holds its folder), "stopped" (started,
  // unfinished, no process: the next sweep resumes it), "failed" (the index
  // says so and nothing runs it now) or "not started".
  std::string state;
  std::string detail;  // "val 1.2345 after 250 steps, 1 min 40 s", "step 120 of 250, pid 4242", ...
};

// Every run of `runs`, in their order, then the runs the index holds beyond
// them (lr grids extended past the spec's edges), as SWEEP_DIR stands now.
std::vector<RunStatus> sweep_status(const std::vector<SweepRun>& runs, const std::string& sweep_dir);

// "2 done, 1 running, 9 not started": the count of each state present.
std::string count_states(const std::vector<RunStatus>& statuses);

}  // namespace muonlab::sweep
