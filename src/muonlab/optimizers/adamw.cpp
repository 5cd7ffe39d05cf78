#include "muonlab/optimizers/adamw.h"

#include <cmath>

namespace muonlab::optim {

void AdamWOptions::validate() const {
  const auto [beta1, beta2] = betas();
  if (!(lr() >= 0)) fail("AdamW lr = {}: expected a number >= 0", lr());
  if (!(beta1 >= 0 && beta1 < 1)) fail("AdamW beta1 = {}: expected a number in [0, 1)", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail("AdamW beta2 = {}: expected a number in [0, 1)", beta2);
  if (!(eps() > 0)) fail("AdamW eps = {}: expected a number > 0", eps());
  if (!(weight_decay() >= 0)) {
    fail("AdamW weight_decay = {}: expected a number >= 0", weight_decay());
  }
}

AdamW::AdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : OptimizerBase(std::move(param_groups), std::make_unique<AdamWOptions>(defaults)) {
  validate_options();
}

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions defaults)
    : AdamW(std::vector<torch::optim::OptimizerParamGroup>{
                torch::optim::OptimizerParamGroup(std::move(params))},
            std::move(defaults)) {}

AdamW::AdamW(const torch::OrderedDict<std::string, torch::Tensor>& named, AdamWOptions defaults)
    : OptimizerBase(named.values(), std::make_unique<AdamWOptions>(defaults)) {
  set_parameter_names(named);
  validate_options();
}

AdamW::AdamW(const std::vector<TaggedParam>& tagged, AdamWOptions defaults)
    : OptimizerBase(tensors_of(tagged), std::make_unique<AdamWOptions>(defaults)) {
  set_parameter_names(names_of(tagged));
  validate_options();
}

void AdamW::validate_options() const {
  for (const auto& group : param_groups_) {
    static_cast<const AdamWOptions&>(group.options()).validate();
  }
}

std::unique_ptr<torch::optim::OptimizerParamState> AdamW::make_state(
    const torch::Tensor& param) const {
  auto state = std::make_unique<AdamWParamState>();
  state->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  state->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  return state;
}

void adamw_step(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                torch::Tensor& exp_avg_sq, int64_t step, const AdamWOptions& options) {
  const auto [beta1, beta2] = options.betas();
  param.mul_(1 - options.lr() * options.weight_decay());
  exp_avg.mul_(beta1).add_(grad, 1 - beta1);
  exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);

  double bias_correction1 = 1.0;
  double bias_correction2 = 1.0;
  if (options.bias_correction()) {
    bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step));
    bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  }
  const auto denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
  param.addcdiv_(exp_avg, denom, -options.lr() / bias_correction1);
}

void AdamW::update() {
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined() || !owns(p)) continue;  // another rank's, under sharding
      auto& state = state_of<AdamWParamState>(p);
      state.step(state.step() + 1);
      adamw_step(p, p.grad(), state.exp_avg(), state.exp_avg_sq(), state.step(), options);
    }
  }
}

}  // namespace muonlab::optim
