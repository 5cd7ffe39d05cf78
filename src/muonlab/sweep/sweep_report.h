// `muonlab report SWEEP_DIR`: a Markdown report of a finished (or partly
// finished) sweep, from its index and run folders:
//   - every (variant, lr) cell: final validation loss, mean +- std over seeds;
//   - each variant at its best lr (lowest mean; per combination of the other
//     axes), against the sweep's baseline: difference, paired t-test over
//     the seeds both ran (t, p), and tokens to reach the target loss with
//     the token consumption ratio R = T_baseline / T_variant;
//   - where runs scored HellaSwag (run.hellaswag), each cell's last acc_norm
//     and each variant's paired difference from the baseline's;
//   - loss curves (mean over seeds) of the best-lr runs, by steps and tokens,
//     and their HellaSwag accuracy by tokens.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace muonlab::sweep {

struct SweepReportOptions {
  std::string sweep_dir;
  std::string out;      // the Markdown file; empty: SWEEP_DIR/report.md
  bool plots = true;    // gnuplot charts next to the report
  // Overrides the spec's [sweep] target_loss (a target chosen after seeing the curves).
  std::optional<double> target_loss;
  // Overrides the spec's baseline: every variant compared to this one (an
  // ablation against its parent rather than the spec's reference); marked
  // post hoc in the report's caveats.
  std::optional<std::string> baseline;
};

struct SweepReportResult {
  std::string markdown_path;
  std::string csv_path;  // every finished run, a row each (runs_csv.h): report.md's is report-runs.csv
  std::vector<std::string> figures;
  int64_t runs_done = 0;
  int64_t runs_missing = 0;  // not finished (pending or failed): left out
};

// Fails when the folder holds no sweep (sweep.json, index.sqlite) or no run
// has finished.
SweepReportResult write_sweep_report(const SweepReportOptions& options);

}  // namespace muonlab::sweep
