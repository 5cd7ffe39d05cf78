// What the sweep report reads from a sweep folder: the sweep's name,
// baseline and target loss (sweep.json), and each finished run with its
// curves and the diagnostics its metrics.jsonl logged.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "muonlab/analysis/loss_curves.h"
#include "muonlab/sweep/sweep_index.h"

namespace muonlab::sweep {

struct SweepMeta {
  std::string name;
  std::string baseline;
  std::string declared_baseline;  // the spec's, before any run
  std::optional<double> target_loss;
  std::optional<double> declared_target_loss;  // the spec's, before any run
};

// sweep.json of `sweep_dir`; fails naming it when it is missing or holds no
// name and baseline.
SweepMeta read_sweep_meta(const std::string& sweep_dir);

// A finished run as the report sees it.
struct ReportRun {
  RunRecord record;
  std::string seed;        // the kSeedAxis value ("" when the sweep has no seed axis)
  std::string condition;   // the other axes, "key=value, ..." ("" when none)
  double val_loss = 0;
  analysis::LossCurves curves;
  std::optional<double> tokens_to_target;
  // The one-step sums the trainer logged ("onestep_g2_gain_ns", ...), by step.
  std::map<int64_t, std::map<std::string, double>> one_step;
  // The largest attention logit of any head (QK-clip's tracking,
  // "max_logit"): its peak over the run and its value at the last step
  // that logged it; absent when the run did not track logits.
  std::optional<double> peak_max_logit, final_max_logit;
  // HellaSwag acc_norm (run.hellaswag) at the last evaluation that scored it,
  // and on how many items; absent when the run did not score it.
  std::optional<double> hellaswag;
  int64_t hellaswag_items = 0;
};

// The runs of `records` that finished with a validation loss, each with its
// metrics.jsonl read once; tokens_to_target where `meta` has a target loss.
std::vector<ReportRun> finished_runs(const std::vector<RunRecord>& records, const SweepMeta& meta);

}  // namespace muonlab::sweep
