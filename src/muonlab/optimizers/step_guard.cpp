#include "muonlab/optimizers/step_guard.h"

#include "muonlab/core/archive_file.h"
#include "muonlab/optimizers/optimizer_base.h"

namespace muonlab::optim {

const EnumNames<NonFinitePolicy>& nonfinite_policy_names() {
  static const EnumNames<NonFinitePolicy> names = {{NonFinitePolicy::kError, "stop"},
                                                   {NonFinitePolicy::kSkipStep, "skip"},
                                                   {NonFinitePolicy::kError, "error"},
                                                   {NonFinitePolicy::kSkipStep, "skip_step"}};
  return names;
}

NonFinitePolicy parse_nonfinite_policy(const std::string& name) {
  return parse_enum(nonfinite_policy_names(), name, "non-finite policy");
}

bool StepGuard::step(const std::vector<const OptimizerBase*>& optimizers, const std::function<void()>& update) {
  for (const auto* optimizer : optimizers) {
    const auto bad = optimizer->first_nonfinite_gradient();
    if (!bad.defined()) continue;
    if (policy_ == NonFinitePolicy::kError) {
      throw NonFiniteGradientError(fmt::format(
          "non-finite gradient (NaN or Inf) in parameter '{}' at step {} of {}; weights were not changed. "
          "Set the non-finite policy to skip_step to skip such steps instead",
          optimizer->parameter_name(bad), applied_ + 1, optimizer->kind()));
    }
    ++skipped_;
    return false;
  }
  update();
  ++applied_;
  return true;
}

void StepGuard::step_known_finite(const std::function<void()>& update) {
  update();
  ++applied_;
}

void StepGuard::save(torch::serialize::OutputArchive& archive) const {
  archive.write("step_count", c10::IValue(applied_));
  archive.write("skipped_steps", c10::IValue(skipped_));
}

void StepGuard::load(torch::serialize::InputArchive& archive) {
  applied_ = read_archive_int(archive, "step_count", "optimizer state");
  skipped_ = read_archive_int(archive, "skipped_steps", "optimizer state");
}

}  // namespace muonlab::optim
