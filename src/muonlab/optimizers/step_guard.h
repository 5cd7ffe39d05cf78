// What a step() does before it changes anything, and what it counts: every
// gradient is checked for NaN and Inf under one policy, then the update runs
// and is counted, or is skipped and counted as skipped. A single optimizer
// (OptimizerBase) and optimizers that step as one (MuonWithAuxAdamW) share
// this one piece, and the trainer's run.on_nonfinite is the same policy.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "muonlab/core/enum_names.h"
#include "muonlab/core/errors.h"

namespace muonlab::optim {

class OptimizerBase;

// What happens when a gradient (or, in the trainer, the loss or the global
// gradient norm) is not finite. The check runs before any state changes, so
// neither policy leaves a half-applied step.
enum class NonFinitePolicy {
  kError,     // throw naming the parameter (or the loss) and the step
  kSkipStep,  // leave weights and state untouched, count the skipped step
};

// "stop" / "skip" (the trainer's words) and "error" / "skip_step" (the
// optimizer API's) name the same two policies.
const EnumNames<NonFinitePolicy>& nonfinite_policy_names();
NonFinitePolicy parse_nonfinite_policy(const std::string& name);

class NonFiniteGradientError : public Error {
 public:
  using Error::Error;
};

class StepGuard {
 public:
  void set_policy(NonFinitePolicy policy) { policy_ = policy; }
  NonFinitePolicy policy() const { return policy_; }

  // Steps applied so far, and steps skipped for non-finite gradients.
  int64_t applied() const { return applied_; }
  int64_t skipped() const { return skipped_; }

  // Checks every gradient of `optimizers`; if all are finite, runs `update`
  // and counts the step. Otherwise throws NonFiniteGradientError naming the
  // parameter (kError), or counts a skipped step (kSkipStep). Returns
  // whether the update ran.
  bool step(const std::vector<const OptimizerBase*>& optimizers, const std::function<void()>& update);

  // Runs and counts `update` without the check, for callers that know every
  // gradient is finite: a finite global gradient norm implies it (a NaN or
  // Inf entry makes the sum of squares NaN or Inf).
  void step_known_finite(const std::function<void()>& update);

  // The counts as "step_count" and "skipped_steps" of a state archive.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  NonFinitePolicy policy_ = NonFinitePolicy::kError;
  int64_t applied_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace muonlab::optim
