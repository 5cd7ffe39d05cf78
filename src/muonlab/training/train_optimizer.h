// The optimizer a run trains with, built from [optimizer]: one
// MuonWithAuxAdamW, routing hidden matrices to Muon and the rest to AdamW by
// the model's parameter tags, or every parameter to AdamW (name = "adamw").
// Schedules scale every group's base lr.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "muonlab/models/transformer.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/hybrid.h"
#include "muonlab/training/train_config.h"

namespace muonlab::training {

// The Muon options `settings` names (muon, muon2 or muon2f), every field
// from the config; the hybrid's Muon part.
optim::MuonOptions muon_options(const OptimizerSettings& settings);
// The AdamW options `settings` names, at `lr` (adamw_lr beside Muon, lr alone).
optim::AdamWOptions adamw_options(double lr, const OptimizerSettings& settings);

class TrainOptimizer {
 public:
  // `on_nonfinite`: what a step with a NaN or infinite gradient does (the
  // trainer's run.on_nonfinite, which it checks first on the loss and the
  // global gradient norm).
  TrainOptimizer(const models::Transformer& model, const OptimizerSettings& settings,
                 optim::NonFinitePolicy on_nonfinite = optim::NonFinitePolicy::kError);

  void zero_grad();
  // With `measure_updates`, also records how far the step moved each
  // group's weights (last_update_rms); it costs a copy of the parameters.
  // `after_update` runs between the update and the measurement: distributed
  // Muon gathers the matrices other ranks updated there.
  // `gradients_known_finite` (the caller found the global gradient norm
  // finite) skips the optimizers' own check of every gradient.
  void step(bool measure_updates = false, const std::function<void()>& after_update = nullptr,
            bool gradients_known_finite = false);

  // The Muon part, or null (AdamW alone).
  optim::Muon* muon() const { return optimizer_->muon(); }
  // The AdamW part (or AdamW alone), or null when Muon takes everything.
  optim::AdamW* adamw() const { return optimizer_->adamw(); }

  // ("muon", rms), ("adamw", rms), ...: the root-mean-square change of each
  // optimizer group's weights in the last measured step, the quantity
  // Muon's lr-scaling rules are about. Groups after a part's first are
  // named "muon1", "adamw1", ...
  const std::vector<std::pair<std::string, double>>& last_update_rms() const { return last_update_rms_; }

  // Each group's lr = its configured lr x `multiplier`. Weight decay is
  // decoupled and multiplied by the lr, so it follows the schedule too.
  void set_lr_multiplier(double multiplier) { set_lr_multipliers(multiplier, multiplier); }
  // As above, with the AdamW part beside Muon on its own schedule
  // ([schedule.adamw]); AdamW alone takes `multiplier`.
  void set_lr_multipliers(double multiplier, double hybrid_adamw_multiplier);
  // Muon's momentum (no-op for AdamW alone).
  void set_muon_momentum(double momentum);

  // ("muon", lr) and ("adamw", lr) of the first group of each part present.
  std::vector<std::pair<std::string, double>> current_lrs() const;

  void save_to_file(const std::string& path) const;
  void load_from_file(const std::string& path);
  // One file per rank under sharded state, merged by any number of ranks
  // (MuonWithAuxAdamW::save_shard_to_file, load_from_shards).
  void save_shard_to_file(const std::string& path, int64_t rank) const;
  void load_from_shards(const std::vector<std::string>& paths);
  // Whether a part of the state is divided among ranks (ZeRO-1).
  bool sharded() const;

 private:
  std::unique_ptr<optim::MuonWithAuxAdamW> optimizer_;
  std::vector<std::vector<double>> base_lrs_;  // per part, per group
  std::vector<std::pair<std::string, double>> last_update_rms_;
};

}  // namespace muonlab::training
