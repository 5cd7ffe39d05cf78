#include "muonlab/training/train_optimizer.h"

#include <algorithm>
#include <cmath>

#include "muonlab/models/stacked_expert_names.h"

namespace muonlab::training {

optim::AdamWOptions adamw_options(double lr, const OptimizerSettings& settings) {
  return optim::AdamWOptions(lr)
      .betas(std::make_tuple(settings.adamw_betas[0], settings.adamw_betas[1]))
      .eps(settings.adamw_eps)
      .weight_decay(settings.adamw_weight_decay);
}

optim::MuonOptions muon_options(const OptimizerSettings& settings) {
  const optim::SecondMomentKind second_moment =
      is_muon_variant(settings.name) ? muon_variant(settings.name) : optim::SecondMomentKind::kNone;
  return optim::MuonOptions(settings.lr)
      .momentum(settings.momentum)
      .nesterov(settings.nesterov)
      .ns_steps(settings.ns_steps)
      .ns_coefficients(optim::ns_schedule(settings.ns_coefficients))
      .ns_dtype(optim::parse_ns_dtype(settings.ns_dtype))
      .ns_method(optim::parse_ns_method(settings.ns_method))
      .gram_restart(settings.gram_restart)
      .cuda_graph(settings.cuda_graph)
      .scale_rule(optim::parse_scale_rule(settings.scale_rule))
      .orthogonalize(settings.orthogonalize)
      .weight_decay(settings.weight_decay)
      .second_moment(second_moment)
      .beta2(settings.beta2)
      .second_moment_eps(settings.second_moment_eps)
      .bias_correction(settings.bias_correction)
      .neuron_norm(uses_neuron_norm(settings.name))
      .neuron_beta2(settings.neuron_beta2)
      .neuron_eps(settings.neuron_eps)
      .group_size(settings.group_size)
      .grouping_rule(optim::parse_grouping_rule(settings.grouping))
      .grouped_projections(optim::parse_grouped_projections(settings.grouped))
      .block_scale(settings.block_scale)
      .grouping_seed(static_cast<uint64_t>(settings.grouping_seed));
}

TrainOptimizer::TrainOptimizer(const models::Transformer& model, const OptimizerSettings& settings,
                               optim::NonFinitePolicy on_nonfinite) {
  const auto params = model->tagged_parameters();
  optimizer_ = std::make_unique<optim::MuonWithAuxAdamW>(
      is_muon_variant(settings.name)
          ? optim::MuonWithAuxAdamW(params, muon_options(settings), adamw_options(settings.adamw_lr, settings))
          : optim::MuonWithAuxAdamW::all_adamw(params, adamw_options(settings.lr, settings)));
  optimizer_->set_nonfinite_policy(on_nonfinite);
  for (auto* part : optimizer_->parts()) {
    // Checkpoints written before the MoE experts were stacked resume.
    part->set_saved_slice_names(models::per_expert_names);
    std::vector<double> lrs;
    for (const auto& group : part->param_groups()) lrs.push_back(group.options().get_lr());
    base_lrs_.push_back(lrs);
  }
}

void TrainOptimizer::zero_grad() { optimizer_->zero_grad(); }

namespace {

// Parameters of each group of each part, before a step.
using GroupSnapshots = std::vector<std::vector<std::vector<torch::Tensor>>>;

GroupSnapshots snapshot(const std::vector<optim::OptimizerBase*>& parts) {
  torch::NoGradGuard no_grad;
  GroupSnapshots copies;
  for (auto* part : parts) {
    auto& groups = copies.emplace_back();
    for (auto& group : part->param_groups()) {
      auto& params = groups.emplace_back();
      for (const auto& p : group.params()) params.push_back(p.detach().clone());
    }
  }
  return copies;
}

double rms_change(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& before) {
  torch::NoGradGuard no_grad;
  double squares = 0;
  int64_t count = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    squares += (params[i].detach() - before[i]).to(torch::kFloat64).square().sum().item<double>();
    count += params[i].numel();
  }
  return count > 0 ? std::sqrt(squares / static_cast<double>(count)) : 0.0;
}

}  // namespace

void TrainOptimizer::step(bool measure_updates, const std::function<void()>& after_update,
                          bool gradients_known_finite) {
  const auto all = optimizer_->parts();
  GroupSnapshots before = measure_updates ? snapshot(all) : GroupSnapshots{};
  if (gradients_known_finite) {
    optimizer_->step_known_finite();
  } else {
    optimizer_->step();
  }
  if (after_update) after_update();
  if (!measure_updates) return;
  last_update_rms_.clear();
  for (size_t p = 0; p < all.size(); ++p) {
    auto& groups = all[p]->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      std::string name = g == 0 ? all[p]->kind() : all[p]->kind() + std::to_string(g);
      last_update_rms_.emplace_back(name, rms_change(groups[g].params(), before[p][g]));
    }
  }
}

void TrainOptimizer::set_lr_multipliers(double multiplier, double hybrid_adamw_multiplier) {
  const auto all = optimizer_->parts();
  for (size_t p = 0; p < all.size(); ++p) {
    const bool beside_muon = optimizer_->muon() != nullptr && all[p] == optimizer_->adamw();
    const double scale = beside_muon ? hybrid_adamw_multiplier : multiplier;
    auto& groups = all[p]->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(base_lrs_[p][g] * scale);
  }
}

void TrainOptimizer::set_muon_momentum(double momentum) {
  if (muon() == nullptr) return;
  for (auto& group : muon()->param_groups()) {
    static_cast<optim::MuonOptions&>(group.options()).momentum(momentum);
  }
}

std::vector<std::pair<std::string, double>> TrainOptimizer::current_lrs() const {
  std::vector<std::pair<std::string, double>> lrs;
  for (auto* part : optimizer_->parts()) lrs.emplace_back(part->kind(), part->param_groups()[0].options().get_lr());
  return lrs;
}

void TrainOptimizer::save_to_file(const std::string& path) const { optimizer_->save_to_file(path); }

void TrainOptimizer::load_from_file(const std::string& path) { optimizer_->load_from_file(path); }

void TrainOptimizer::save_shard_to_file(const std::string& path, int64_t rank) const {
  optimizer_->save_shard_to_file(path, rank);
}

void TrainOptimizer::load_from_shards(const std::vector<std::string>& paths) { optimizer_->load_from_shards(paths); }

bool TrainOptimizer::sharded() const {
  const auto parts = optimizer_->parts();
  return std::any_of(parts.begin(), parts.end(), [](const optim::OptimizerBase* part) { return part->sharded(); });
}

}  // namespace muonlab::training
