// Muon for hidden matrices with AdamW for everything else, routed by
// parameter role (param_role.h): the way every Muon user trains a
// transformer. One step() checks all gradients first, then steps both, and
// counts one step (step_guard.h). all_adamw() routes every parameter to
// AdamW, so that the AdamW baseline steps, counts and checkpoints the same way.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::optim {

struct RoutedParam {
  std::string name;
  ParamRole role;
  OptimizerChoice optimizer;
};

class MuonWithAuxAdamW {
 public:
  // Parameters with roles (from the model, or tag_parameters()).
  MuonWithAuxAdamW(const std::vector<TaggedParam>& params, MuonOptions muon_options,
                   AdamWOptions adamw_options);
  // Roles inferred from names (infer_param_role).
  MuonWithAuxAdamW(const torch::OrderedDict<std::string, torch::Tensor>& named,
                   MuonOptions muon_options, AdamWOptions adamw_options);
  // Every parameter to AdamW (with AdamW's own decay rules for roles).
  static MuonWithAuxAdamW all_adamw(const std::vector<TaggedParam>& params, AdamWOptions adamw_options);

  torch::Tensor step(torch::optim::Optimizer::LossClosure closure = nullptr);
  // step() for gradients already known to be finite, as a trainer knows them
  // from a finite global gradient norm: the check's read of every gradient
  // (on a GPU, also a host sync) is not done twice.
  void step_known_finite();
  void zero_grad();

  void set_nonfinite_policy(NonFinitePolicy policy) { steps_.set_policy(policy); }
  NonFinitePolicy nonfinite_policy() const { return steps_.policy(); }
  int64_t step_count() const { return steps_.applied(); }
  int64_t skipped_steps() const { return steps_.skipped(); }

  // Which optimizer took each parameter, in the order given.
  const std::vector<RoutedParam>& routing() const { return routing_; }
  // Null when no parameter was routed to it.
  Muon* muon() const { return muon_.get(); }
  AdamW* adamw() const { return adamw_.get(); }
  // The optimizers present: Muon first, then AdamW.
  std::vector<OptimizerBase*> parts() const;

  // One archive with a part per optimizer present. load() also reads the
  // state file of a single optimizer when that is this one's only part.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);
  void save_to_file(const std::string& path) const { save_state_file(*this, path); }  // atomic
  void load_from_file(const std::string& path) { load_state_file(*this, path); }

  // Distributed runs write one state file per rank, so that no rank ever
  // holds the whole state: rank `rank`'s holds the state a sharded part
  // (ZeRO-1) keeps on it, and rank 0's also the state of the parts every
  // rank keeps whole. load_from_shards() merges the files of any number of
  // ranks, each parameter's state from the one file that holds it (keeping
  // only the state a sharded part owns on this rank), and changes nothing
  // when they do not fit together (two files with one parameter's state, or
  // written after different numbers of steps).
  void save_shard_to_file(const std::string& path, int64_t rank) const;
  void load_from_shards(const std::vector<std::string>& paths);

 private:
  // save(), with each part's state filtered by `keep` (null: all of it).
  void save_parts(torch::serialize::OutputArchive& archive,
                  const std::function<bool(const OptimizerBase&, const torch::Tensor&)>& keep) const;
  // No Muon options: every parameter to AdamW.
  MuonWithAuxAdamW(const std::vector<TaggedParam>& params, std::optional<MuonOptions> muon_options,
                   AdamWOptions adamw_options);
  void load_parts(torch::serialize::InputArchive& archive);

  std::vector<RoutedParam> routing_;
  std::unique_ptr<Muon> muon_;
  std::unique_ptr<AdamW> adamw_;
  StepGuard steps_;
};

}  // namespace muonlab::optim
