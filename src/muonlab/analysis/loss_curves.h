// A run's training and validation losses, by step and by tokens trained, and
// its HellaSwag accuracy where it scored one: what `muonlab plot` draws. training/read_loss_curves.h reads them from a run's
// metrics.jsonl; they are defined here so the plot needs nothing above it.
#pragma once

#include <limits>
#include <vector>

namespace muonlab::analysis {

// NaN where a value is unknown (a NaN loss, or tokens an old file lacks);
// the plot leaves such points out.
struct LossPoint {
  double step = 0;
  double tokens = 0;  // tokens trained when the loss was measured
  double loss = 0;
  // For a mean over seeds: their standard deviation, drawn as a band of
  // +- spread around the curve. NaN (one run's curve): no band.
  double spread = std::numeric_limits<double>::quiet_NaN();
};

struct LossCurves {
  std::vector<LossPoint> train;       // one per logged step
  std::vector<LossPoint> validation;  // one per evaluation
  // HellaSwag acc_norm (run.hellaswag), the fraction of items right, in each
  // point's `loss`: one per evaluation that scored it; empty where none did.
  std::vector<LossPoint> hellaswag;
};

}  // namespace muonlab::analysis
