#include "muonlab/models/moe.h"

#include <fmt/format.h>

#include <cmath>

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
  for (int64_t i = 0; i < config_.num_routed; ++i) {
    routed_.push_back(register_module(
        "expert_" + std::to_string(i),
        Mlp(MlpKind::kSwiglu, config.d_model, config_.expert_hidden, config.bias)));
  }
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
                        1.0 / static_cast<double>(stats.load.numel()), stats.dropped,
                        stats.assignments);
  }
  return text;
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

  // Assignments (token, slot) grouped by expert, token order kept inside each
  // group by a stable sort, so capacity keeps the earliest tokens.
  const auto flat_expert = chosen.reshape({-1});
  const auto flat_gate = gates.reshape({-1}).to(x.scalar_type());
  const auto flat_token =
      torch::arange(n_tokens, chosen.options()).repeat_interleave(top_k);
  const auto order = std::get<1>(torch::sort(flat_expert, /*stable=*/true, 0, false));
  const auto counts = torch::bincount(flat_expert, {}, n_experts);
  const auto counts_cpu = counts.to(torch::kCPU);
  const auto* count = counts_cpu.data_ptr<int64_t>();

  MoeStats stats;
  stats.assignments = n_tokens * top_k;
  stats.load = counts_cpu.to(torch::kFloat64) / static_cast<double>(stats.assignments);
  if (config_.capacity_factor > 0) {
    stats.capacity = static_cast<int64_t>(
        std::ceil(config_.capacity_factor * static_cast<double>(stats.assignments) /
                  static_cast<double>(n_experts)));
  }

  auto output = torch::zeros_like(tokens);
  for (auto& expert : shared_) output = output + expert(tokens);
  int64_t start = 0;
  for (int64_t e = 0; e < n_experts; start += count[e], ++e) {
    const int64_t kept = stats.capacity > 0 ? std::min(count[e], stats.capacity) : count[e];
    stats.dropped += count[e] - kept;
    if (kept == 0) continue;
    const auto picks = order.narrow(0, start, kept);
    const auto token_ids = flat_token.index_select(0, picks);
    const auto gate = flat_gate.index_select(0, picks).unsqueeze(1);
    output = output.index_add(0, token_ids, routed_[e](tokens.index_select(0, token_ids)) * gate);
  }

  auto balance = expert_balance_loss(scores, counts, top_k, config_.balance_coef);
  return {output.view(shape), balance.to(x.scalar_type()), std::move(stats)};
}

ParamTags MoeImpl::param_tags() const {
  ParamTags tags = linear_tags("router", ParamRole::kRouter, false);
  for (size_t i = 0; i < shared_.size(); ++i) {
    append_tags(tags, "shared_" + std::to_string(i), shared_[i]->param_tags(ParamRole::kMlp));
  }
  for (size_t i = 0; i < routed_.size(); ++i) {
    append_tags(tags, "expert_" + std::to_string(i),
                routed_[i]->param_tags(ParamRole::kExpert, static_cast<int64_t>(i)));
  }
  return tags;
}

std::vector<torch::Tensor*> MoeImpl::output_weights() {
  std::vector<torch::Tensor*> weights;
  for (auto& expert : shared_) weights.push_back(&expert->output_weight());
  for (auto& expert : routed_) weights.push_back(&expert->output_weight());
  return weights;
}

}  // namespace muonlab::models
