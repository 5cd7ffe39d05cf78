// What every muonlab optimizer shares on top of torch::optim::Optimizer:
// parameter names for messages and state files, the non-finite-gradient
// policy and step counts (step_guard.h), and state save/load keyed by
// parameter name.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "muonlab/core/archive_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/optimizers/param_state_io.h"
#include "muonlab/optimizers/step_guard.h"

namespace muonlab::optim {

class OptimizerBase : public torch::optim::Optimizer {
 public:
  OptimizerBase(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                std::unique_ptr<torch::optim::OptimizerOptions> defaults);
  OptimizerBase(std::vector<torch::Tensor> params,
                std::unique_ptr<torch::optim::OptimizerOptions> defaults);

  // torch::optim::Optimizer::add_param_group, keeping the options a group
  // comes with. Recent LibTorch's (2.14's; PyTorch changed it in late 2025)
  // merges them field by field with the defaults for its own optimizers,
  // and for every other optimizer silently replaces them with the defaults.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);

  // Short name written into state files: "muon", "adamw".
  virtual std::string kind() const = 0;

  // Names parameters after module->named_parameters(). Unnamed parameters
  // are called "group<g>.param<i>".
  void set_parameter_names(const torch::OrderedDict<std::string, torch::Tensor>& named);
  std::string parameter_name(const torch::Tensor& param) const;

  void set_nonfinite_policy(NonFinitePolicy policy) { steps_.set_policy(policy); }
  NonFinitePolicy nonfinite_policy() const { return steps_.policy(); }

  // Steps applied so far, and steps skipped for non-finite gradients.
  int64_t step_count() const { return steps_.applied(); }
  int64_t skipped_steps() const { return steps_.skipped(); }

  // Checks gradients, then applies the update (or skips, by policy).
  torch::Tensor step(LossClosure closure = nullptr) override;

  // The update alone, neither checked nor counted: MuonWithAuxAdamW checks
  // and counts its parts' steps as one and calls this on each.
  void apply_update();

  // State by parameter name. load() checks that the names, the parameter
  // shapes and every buffer's shape match, and changes nothing if they do not.
  void save(torch::serialize::OutputArchive& archive) const final;
  void load(torch::serialize::InputArchive& archive) override;
  // As save(), writing the state of only the parameters `keep` accepts (the
  // others are listed without state): one rank's share of a sharded state.
  // Optimizers with state beyond the parameters' override this, not save().
  virtual void save_kept(torch::serialize::OutputArchive& archive,
                         const std::function<bool(const torch::Tensor&)>& keep) const;
  void save_to_file(const std::string& path) const { save_state_file(*this, path); }  // atomic
  void load_from_file(const std::string& path) { load_state_file(*this, path); }

  // Where a state being loaded has no entry for a parameter, `names(name,
  // n)` may name the n entries that hold its slices along dim 0, in order:
  // a state saved before those parameters were stacked into one (a MoE
  // layer's routed experts, models/stacked_expert_names.h) then loads into
  // it, each buffer the stack of theirs. Unset: no such names.
  using SliceNames = std::function<std::vector<std::string>(const std::string& name, int64_t slices)>;
  void set_saved_slice_names(SliceNames names) { slice_names_ = std::move(names); }

  // The first parameter with a non-finite gradient, or an undefined tensor.
  torch::Tensor first_nonfinite_gradient() const;

  // Every parameter, in group order.
  std::vector<torch::Tensor> all_parameters() const;

  // Per-parameter state by hand, for optimizers sharded across ranks
  // (distributed/data_parallel.h): whether `param` has state; its state, made
  // fresh (zeros) when it has none, to be filled from the rank that owns it;
  // and dropping it again on the ranks that do not own it.
  bool has_state(const torch::Tensor& param) const;
  VisitableParamState& visitable_state(const torch::Tensor& param);
  void drop_state(const torch::Tensor& param);
  // Moves a parameter's state out (null when it has none) and back in: how
  // state files written by several ranks are merged (hybrid.h).
  std::unique_ptr<torch::optim::OptimizerParamState> release_state(const torch::Tensor& param);
  void adopt_state(const torch::Tensor& param, std::unique_ptr<torch::optim::OptimizerParamState> state);

  // Sharded optimizers (ZeRO-1): only the parameters `owned` accepts are
  // stepped, and only they get state; another rank steps the rest. Unset
  // (the default): every parameter is owned.
  void set_ownership(std::function<bool(const torch::Tensor&)> owned) { owned_ = std::move(owned); }
  bool owns(const torch::Tensor& param) const { return !owned_ || owned_(param); }
  bool sharded() const { return static_cast<bool>(owned_); }

 protected:
  virtual void update() = 0;
  virtual std::unique_ptr<torch::optim::OptimizerParamState> make_state(
      const torch::Tensor& param) const = 0;

  // The state of `param`, made on first use.
  template <typename State>
  State& state_of(const torch::Tensor& param) {
    auto key = compat::optimizer_state_key(param);
    auto it = state_.find(key);
    if (it == state_.end()) {
      it = state_.emplace(std::move(key), make_state(param)).first;
    }
    return static_cast<State&>(*it->second);
  }

 private:
  using SavedEntries = std::map<std::string, torch::serialize::InputArchive>;
  // The parameters saved as slices (by slice_names_), and their slices' names.
  std::map<std::string, std::vector<std::string>> saved_slices(const std::vector<torch::Tensor>& params,
                                                               const SavedEntries& saved) const;
  // A parameter's state from its entry, or from its slices' entries; null
  // where it was saved without state.
  std::unique_ptr<torch::optim::OptimizerParamState> load_state(const torch::Tensor& p, SavedEntries& saved) const;
  std::unique_ptr<torch::optim::OptimizerParamState> load_sliced_state(const torch::Tensor& p,
                                                                       const std::vector<std::string>& slice_names,
                                                                       SavedEntries& saved) const;

  std::unordered_map<const void*, std::string> names_;
  StepGuard steps_;
  std::function<bool(const torch::Tensor&)> owned_;
  SliceNames slice_names_;
};

}  // namespace muonlab::optim
