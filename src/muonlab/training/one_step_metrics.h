// The Group Muon paper's one-step descent diagnostics (docs/algorithms.md,
// One-step descent diagnostics) logged during training: for every attention
// weight Muon optimizes, the whitening gain and the grouping-induced norm
// cost of orthogonalizing its gradient in head blocks instead of as one
// matrix, from Newton-Schulz (the run's own NS settings) and from the exact
// polar factors.
//
// Blocks follow the run's grouping rule and grouped projections, for each
// group size asked (run.one_step_group_sizes; by default the run's own g,
// or head-wise g = 1 for plain Muon: "would grouping have paid here?"),
// so one run can compare several g on the same gradients. Random grouping
// draws from a generator seeded with the step, never from the optimizer's,
// so diagnostics do not change the training run.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"
#include "muonlab/optimizers/param_role.h"
#include "muonlab/training/train_config.h"

namespace muonlab::training {

// The group sizes measured: run.one_step_group_sizes, else the run's
// optimizer.group_size, else 1 (head-wise).
std::vector<int64_t> one_step_group_sizes(const TrainConfig& config);

// Metric names and values for the gradients now held by `params` (the
// model's tagged parameters), per group size g: for every attention weight
// routed to Muon "onestep_g{g}_gain_ns.NAME", "onestep_g{g}_cost_ns.NAME",
// "onestep_g{g}_gain_exact.NAME", "onestep_g{g}_cost_exact.NAME", then
// their sums over the weights ("onestep_g{g}_gain_ns", ...). Empty for
// AdamW runs.
std::vector<std::pair<std::string, double>> one_step_metrics(const std::vector<optim::TaggedParam>& params,
                                                              const OptimizerSettings& settings,
                                                              const std::vector<int64_t>& group_sizes,
                                                              const optim::NewtonSchulzConfig& ns_config,
                                                              int64_t step);

}  // namespace muonlab::training
