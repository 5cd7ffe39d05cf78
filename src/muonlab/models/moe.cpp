#include "muonlab/models/moe.h"

#include <fmt/format.h>

#include <cmath>

#include "muonlab/models/expert_dispatch.h"
#include "muonlab/models/linear.h"

namespace muonlab::models {

using optim::ParamRole;

MoeImpl::MoeImpl(const ModelConfig& config) : config_(config.moe) {
  router_ = register_module("router", make_linear(config.d_model, config_.num_routed, false));
  for (int64_t i = 0; i < config_.num_shared; ++i) {
    shared_.push_back(register_module(
        "shared_" + std::to_string(i),
        Mlp(MlpKind::kSwiglu, config.d_model, config_.expert_hidden, config.bias)));
  }
  routed_ = register_module(
      "experts", RoutedExperts(config_.num_routed, config.d_model, config_.expert_hidden, config.bias));
}

torch::Tensor expert_balance_loss(const torch::Tensor& scores, const torch::Tensor& counts,
                                  int64_t top_k, double alpha) {
  const int64_t tokens = scores.size(0);
  const int64_t experts = scores.size(1);
  const auto fraction = counts.to(scores.dtype()) * (static_cast<double>(experts) /
                                                     static_cast<double>(top_k * tokens));
  const auto mean_score = scores.mean(0);
  return alpha * (fraction * mean_score).sum();
}

std::string describe_routing(const std::vector<MoeStats>& layers,
                             const std::vector<int64_t>& layer_indices) {
  std::string text;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& stats = layers[i];
    const auto layer = i < layer_indices.size() ? layer_indices[i] : static_cast<int64_t>(i);
    text += fmt::format("moe h.{}: load max {:.3f} min {:.3f} (balanced {:.3f}), dropped {} of {}\n",
                        layer, stats.load.max().item<double>(), stats.load.min().item<double>(),
                        1.0 / static_cast<double>(stats.load.numel()), stats.dropped.item<int64_t>(),
                        stats.assignments);
  }
  return text;
}

int64_t MoeImpl::capacity(int64_t n_tokens) const {
  if (config_.capacity_factor <= 0) return 0;  // dropless
  return static_cast<int64_t>(std::ceil(config_.capacity_factor *
                                        static_cast<double>(n_tokens * config_.top_k) /
                                        static_cast<double>(config_.num_routed)));
}

MoeOutput MoeImpl::forward(const torch::Tensor& x) {
  const auto shape = x.sizes().vec();
  const auto tokens = x.reshape({-1, x.size(-1)});  // [T, d]
  const int64_t n_tokens = tokens.size(0);
  const int64_t top_k = config_.top_k;
  const int64_t n_experts = config_.num_routed;

  // Routing in float32 or wider: softmax affinities, top-k gates.
  const auto logits = router_(tokens);
  const auto scores =
      torch::softmax(logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32),
                     -1);
  auto [gates, chosen] = scores.topk(top_k, -1);
  if (config_.renormalize) gates = gates / gates.sum(-1, /*keepdim=*/true);

  MoeStats stats;
  stats.assignments = n_tokens * top_k;
  stats.capacity = capacity(n_tokens);
  const auto dispatch = resolve_dispatch(config_.dispatch, x.device());
  const auto assignments = sort_assignments(chosen, gates, n_experts, stats.capacity,
                                            needs_counts_on_host(dispatch));
  // Left on the device: reading it is the logger's business, once a step.
  stats.load = assignments.routed_counts.to(torch::kFloat64) /
               static_cast<double>(stats.assignments);
  stats.dropped = assignments.dropped;

  auto shared = torch::zeros_like(tokens);
  for (auto& expert : shared_) shared = shared + expert(tokens);
  const auto output =
      add_routed_experts(shared, tokens, *routed_, assignments, dispatch);

  auto balance = expert_balance_loss(scores, assignments.routed_counts, top_k, config_.balance_coef);
  return {output.view(shape), balance.to(x.scalar_type()), std::move(stats)};
}

ParamTags MoeImpl::param_tags() const {
  ParamTags tags = linear_tags("router", ParamRole::kRouter, false);
  for (size_t i = 0; i < shared_.size(); ++i) {
    append_tags(tags, "shared_" + std::to_string(i), shared_[i]->param_tags());
  }
  append_tags(tags, "experts", routed_->param_tags());
  return tags;
}

std::vector<torch::Tensor*> MoeImpl::output_weights() {
  std::vector<torch::Tensor*> weights;
  for (auto& expert : shared_) weights.push_back(&expert->output_weight());
  weights.push_back(&routed_->down->weight);
  return weights;
}

}  // namespace muonlab::models
