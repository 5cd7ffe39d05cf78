#include "muonlab/optimizers/adamw.h"

#include <algorithm>
#include <cmath>

#include "muonlab/core/torch_compat.h"
#include "muonlab/optimizers/fused_adamw_cpu.h"
#include "muonlab/optimizers/param_dtype.h"

namespace muonlab::optim {

void AdamWOptions::validate() const {
  const auto [beta1, beta2] = betas();
  if (!(lr() >= 0 && std::isfinite(lr()))) fail("AdamW lr = {}: expected a finite number >= 0", lr());
  if (!(beta1 >= 0 && beta1 < 1)) fail("AdamW beta1 = {}: expected a number in [0, 1)", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail("AdamW beta2 = {}: expected a number in [0, 1)", beta2);
  if (!(eps() > 0 && std::isfinite(eps()))) fail("AdamW eps = {}: expected a finite number > 0", eps());
  if (!(weight_decay() >= 0 && std::isfinite(weight_decay()))) {
    fail("AdamW weight_decay = {}: expected a finite number >= 0", weight_decay());
  }
}

AdamW::AdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : OptimizerBase(std::move(param_groups), std::make_unique<AdamWOptions>(defaults)) {
  validate_parameters();
}

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions defaults)
    : AdamW(std::vector<torch::optim::OptimizerParamGroup>{
                torch::optim::OptimizerParamGroup(std::move(params))},
            std::move(defaults)) {}

AdamW::AdamW(const torch::OrderedDict<std::string, torch::Tensor>& named, AdamWOptions defaults)
    : OptimizerBase(named.values(), std::make_unique<AdamWOptions>(defaults)) {
  set_parameter_names(named);
  validate_parameters();
}

AdamW::AdamW(const std::vector<TaggedParam>& tagged, AdamWOptions defaults)
    : OptimizerBase(tensors_of(tagged), std::make_unique<AdamWOptions>(defaults)) {
  set_parameter_names(names_of(tagged));
  validate_parameters();
}

void AdamW::validate_parameters() const {
  for (const auto& group : param_groups_) {
    static_cast<const AdamWOptions&>(group.options()).validate();
    for (const auto& param : group.params()) check_param_dtype(param, parameter_name(param), "AdamW");
  }
}

std::unique_ptr<torch::optim::OptimizerParamState> AdamW::make_state(
    const torch::Tensor& param) const {
  auto state = std::make_unique<AdamWParamState>();
  state->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  state->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  return state;
}

namespace {

// The step's scalars: decay, betas, lr / c1, sqrt(c2) and eps, with the
// bias corrections c_i = 1 - beta_i^step (1 without bias correction).
FusedAdamWCoefficients adamw_coefficients(int64_t step, const AdamWOptions& options) {
  const auto [beta1, beta2] = options.betas();
  double bias_correction1 = 1.0;
  double bias_correction2 = 1.0;
  if (options.bias_correction()) {
    bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
    bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  }
  return {1 - options.lr() * options.weight_decay(), beta1, beta2, options.lr() / bias_correction1,
          std::sqrt(bias_correction2), options.eps()};
}

}  // namespace

void adamw_step(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                torch::Tensor& exp_avg_sq, int64_t step, const AdamWOptions& options) {
  const FusedAdamWCoefficients k = adamw_coefficients(step, options);
  if (fused_adamw_cpu_applies(param, grad, exp_avg, exp_avg_sq)) {
    fused_adamw_cpu_step(param, grad, exp_avg, exp_avg_sq, k);
    return;
  }
  param.mul_(k.decay);
  exp_avg.mul_(k.beta1).add_(grad, 1 - k.beta1);
  exp_avg_sq.mul_(k.beta2).addcmul_(grad, grad, 1 - k.beta2);
  const auto denom = (exp_avg_sq.sqrt() / k.sqrt_c2).add_(k.eps);
  param.addcdiv_(exp_avg, denom, -k.step_size);
}

namespace {

bool can_use_fused_kernel(const AdamWTensorLists& lists, const AdamWOptions& options) {
  if (lists.params.empty() || !options.bias_correction()) return false;
  if (!compat::has_fused_adamw(lists.params.front().device())) return false;
  for (size_t i = 0; i < lists.params.size(); ++i) {
    if (lists.grads[i].scalar_type() != lists.params[i].scalar_type() || lists.grads[i].is_sparse()) return false;
  }
  return true;
}

void fused_step(AdamWTensorLists& lists, int64_t step, const AdamWOptions& options) {
  const auto [beta1, beta2] = options.betas();
  // The kernel reads each parameter's step from a tensor: one fill, no copy
  // from the host per parameter.
  const auto n = static_cast<int64_t>(lists.params.size());
  const torch::Tensor steps =
      torch::full({n}, static_cast<double>(step), lists.params.front().options().dtype(torch::kFloat32));
  compat::fused_adamw_(lists.params, lists.grads, lists.exp_avgs, lists.exp_avg_sqs, steps.unbind(0),
                       options.lr(), beta1, beta2, options.weight_decay(), options.eps());
}

// adamw_step's arithmetic, op for op, one list at a time.
void foreach_step(AdamWTensorLists& lists, int64_t step, const AdamWOptions& options) {
  const FusedAdamWCoefficients k = adamw_coefficients(step, options);
  at::_foreach_mul_(lists.params, k.decay);
  at::_foreach_mul_(lists.exp_avgs, k.beta1);
  at::_foreach_add_(lists.exp_avgs, lists.grads, 1 - k.beta1);
  at::_foreach_mul_(lists.exp_avg_sqs, k.beta2);
  at::_foreach_addcmul_(lists.exp_avg_sqs, lists.grads, lists.grads, 1 - k.beta2);
  auto denoms = at::_foreach_sqrt(lists.exp_avg_sqs);
  at::_foreach_div_(denoms, k.sqrt_c2);
  at::_foreach_add_(denoms, k.eps);
  at::_foreach_addcdiv_(lists.params, lists.exp_avgs, denoms, -k.step_size);
}

}  // namespace

void adamw_multi_tensor_step(AdamWTensorLists& lists, int64_t step, const AdamWOptions& options) {
  if (!lists.params.empty() && lists.params.front().device().is_cpu()) {
    // LibTorch's _foreach ops loop per tensor on the CPU anyway; adamw_step
    // takes the one-pass loop where the tensors allow it.
    for (size_t i = 0; i < lists.params.size(); ++i) {
      adamw_step(lists.params[i], lists.grads[i], lists.exp_avgs[i], lists.exp_avg_sqs[i], step, options);
    }
    return;
  }
  if (can_use_fused_kernel(lists, options)) {
    fused_step(lists, step, options);
  } else {
    foreach_step(lists, step, options);
  }
}

void AdamWBatches::add(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& exp_avg,
                       const torch::Tensor& exp_avg_sq, int64_t step) {
  // Few batches (usually one): a linear search.
  auto batch = std::find_if(batches_.begin(), batches_.end(), [&](const Batch& b) {
    return b.device == param.device() && b.dtype == param.scalar_type() && b.step == step;
  });
  if (batch == batches_.end()) {
    batch = batches_.insert(batches_.end(), Batch{param.device(), param.scalar_type(), step, {}});
  }
  batch->lists.params.push_back(param);
  batch->lists.grads.push_back(grad);
  batch->lists.exp_avgs.push_back(exp_avg);
  batch->lists.exp_avg_sqs.push_back(exp_avg_sq);
}

void AdamWBatches::step_all(const AdamWOptions& options) {
  for (auto& batch : batches_) adamw_multi_tensor_step(batch.lists, batch.step, options);
}

void AdamW::update() {
  for (auto& group : param_groups_) {
    AdamWBatches batches;
    for (auto& p : group.params()) {
      if (!p.grad().defined() || !owns(p)) continue;  // another rank's, under sharding
      auto& state = state_of<AdamWParamState>(p);
      state.step(state.step() + 1);
      batches.add(p, p.grad(), state.exp_avg(), state.exp_avg_sq(), state.step());
    }
    batches.step_all(static_cast<const AdamWOptions&>(group.options()));
  }
}

}  // namespace muonlab::optim
