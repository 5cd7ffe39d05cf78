// Runs a sweep's grid: every run is `muonlab train` in a child process of
// its own (crash isolation; the trainer's checkpoints make a run resumable),
// up to `parallel` at once, each in its own folder under SWEEP_DIR/runs/.
// Resumable: a finished run (its model.safetensors written) is skipped, an
// unfinished one with a checkpoint continues with --resume, and a run whose
// process fails is retried `retries` times and then reported by name with
// its log. The SQLite index (sweep_index.h) is refreshed from the run
// folders before and after every run.
#pragma once

#include <iosfwd>
#include <string>

#include "muonlab/sweep/sweep_spec.h"

namespace muonlab::sweep {

struct SweepOptions {
  std::string out_dir;         // the sweep folder
  int64_t parallel = 0;        // 0: the spec's
  std::string muonlab_binary;  // the `muonlab` to run; empty: this process's executable
};

struct SweepSummary {
  int64_t runs = 0;
  int64_t already_done = 0;  // skipped: finished before this call
  int64_t finished = 0;      // finished by this call
  int64_t failed = 0;        // failed after every retry
  std::string index_path;
};

// Writes a line per run started, finished, skipped or failed to `log`.
SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& log);

// The folder of a run: SWEEP_DIR/runs/ID.
std::string sweep_run_dir(const std::string& sweep_dir, const std::string& run_id);
inline std::string sweep_run_dir(const std::string& sweep_dir, const SweepRun& run) {
  return sweep_run_dir(sweep_dir, run.id);
}

}  // namespace muonlab::sweep
