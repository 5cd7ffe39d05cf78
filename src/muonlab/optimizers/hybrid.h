// Muon for hidden matrices with AdamW for everything else, routed by
// parameter role (param_role.h): the way every Muon user trains a
// transformer. One step() checks all gradients first, then steps both.
#pragma once

#include <torch/torch.h>

#include <memory>
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

  torch::Tensor step(torch::optim::Optimizer::LossClosure closure = nullptr);
  void zero_grad();

  void set_nonfinite_policy(NonFinitePolicy policy);
  NonFinitePolicy nonfinite_policy() const { return nonfinite_policy_; }
  int64_t step_count() const { return step_count_; }
  int64_t skipped_steps() const { return skipped_steps_; }

  // Which optimizer took each parameter, in the order given.
  const std::vector<RoutedParam>& routing() const { return routing_; }
  // Null when no parameter was routed to it.
  Muon* muon() { return muon_.get(); }
  AdamW* adamw() { return adamw_.get(); }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);
  void save_to_file(const std::string& path) const;  // atomic
  void load_from_file(const std::string& path);

 private:
  std::vector<OptimizerBase*> parts() const;

  std::vector<RoutedParam> routing_;
  std::unique_ptr<Muon> muon_;
  std::unique_ptr<AdamW> adamw_;
  NonFinitePolicy nonfinite_policy_ = NonFinitePolicy::kError;
  int64_t step_count_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace muonlab::optim
