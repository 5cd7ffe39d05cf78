// The sweep's index of runs: one SQLite database (index.sqlite in the sweep
// folder) with a row per run of the grid, its settings and its final
// metrics, so results can be queried with any SQLite client. The run folders
// are the truth: the index is refreshed from them (read_run_outcome) every
// time the sweep runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "muonlab/sweep/sweep_spec.h"

struct sqlite3;

namespace muonlab::sweep {

// What a run folder says about its run: finished when model.safetensors was
// written (the trainer writes it last) or the folder was archived without it
// (archived.json, scripts/archive-sweep), and the last logged metrics.
struct RunOutcome {
  bool finished = false;
  std::optional<double> final_val_loss;
  std::optional<double> final_train_loss;
  int64_t steps = 0;
  int64_t tokens = 0;
  double seconds = 0;
};
RunOutcome read_run_outcome(const std::string& run_dir);

struct RunRecord {
  std::string id;
  std::string variant;
  std::string lr;          // empty: the config's
  std::string axes_json;   // {"run.seed": "1", ...}
  std::string status;      // "done", "failed" or "pending"
  int64_t attempts = 0;
  RunOutcome outcome;
  std::string run_dir;
};

class SweepIndex {
 public:
  // Opens (creating if needed) the database and its table. Fails naming the
  // file when it is not a database or cannot be written.
  explicit SweepIndex(const std::string& path);
  ~SweepIndex();
  SweepIndex(const SweepIndex&) = delete;
  SweepIndex& operator=(const SweepIndex&) = delete;

  // Inserts or replaces the row of record.id.
  void put(const RunRecord& record);
  // Every row, in id order.
  std::vector<RunRecord> all() const;
  const std::string& path() const { return path_; }

 private:
  void exec(const std::string& sql) const;
  std::string path_;
  sqlite3* db_ = nullptr;
};

// The record of `run` as its folder now stands (status "done" when
// finished, else `status_if_unfinished`).
RunRecord record_of(const SweepRun& run, const std::string& run_dir, const std::string& status_if_unfinished,
                    int64_t attempts);

// The axis that pairs runs for the t-test and averages out in means.
inline constexpr const char* kSeedAxis = "run.seed";

// A record's axis values split into its seed (the kSeedAxis value, "" when
// the sweep has no seed axis) and its condition: the other axes as
// "key=value, ..." ("" when none). Runs of one condition are compared.
struct RunAxes {
  std::string seed;
  std::string condition;
};
RunAxes axes_of(const RunRecord& record);

}  // namespace muonlab::sweep
