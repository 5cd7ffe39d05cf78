#include "muonlab/models/block.h"

namespace muonlab::models {

BlockImpl::BlockImpl(const ModelConfig& config, std::shared_ptr<const RotaryEmbedding> rope) {
  ln_1_ = register_module("ln_1", Norm(config.norm, config.d_model, config.norm_eps, config.bias));
  if (config.attention == AttentionKind::kMla) {
    latent_attention_ = register_module("attn", LatentAttention(config, std::move(rope)));
  } else {
    self_attention_ = register_module("attn", SelfAttention(config, std::move(rope)));
  }
  ln_2_ = register_module("ln_2", Norm(config.norm, config.d_model, config.norm_eps, config.bias));
  if (config.feed_forward == FeedForwardKind::kMoe) {
    moe_ = register_module("moe", Moe(config));
  } else {
    mlp_ = register_module(
        "mlp", Mlp(config.mlp, config.d_model, config.dense_hidden(), config.bias));
  }
}

torch::Tensor BlockImpl::attend(const torch::Tensor& x, LayerKvCache* cache, int64_t position) {
  if (latent_attention_) return latent_attention_(x, cache, position);
  return self_attention_(x, cache, position);
}

BlockOutput BlockImpl::forward(const torch::Tensor& x, LayerKvCache* cache, int64_t position) {
  const auto h = x + attend(ln_1_(x), cache, position);
  if (mlp_) return {h + mlp_(ln_2_(h)), {}, std::nullopt};
  auto routed = moe_(ln_2_(h));
  return {h + routed.output, routed.balance_loss, std::move(routed.stats)};
}

ParamTags BlockImpl::param_tags() const {
  ParamTags tags;
  append_tags(tags, "ln_1", ln_1_->param_tags());
  append_tags(tags, "attn",
              latent_attention_ ? latent_attention_->param_tags() : self_attention_->param_tags());
  append_tags(tags, "ln_2", ln_2_->param_tags());
  if (mlp_) append_tags(tags, "mlp", mlp_->param_tags());
  if (moe_) append_tags(tags, "moe", moe_->param_tags());
  return tags;
}

std::vector<torch::Tensor*> BlockImpl::residual_output_weights() {
  std::vector<torch::Tensor*> weights{latent_attention_ ? &latent_attention_->output_weight()
                                                        : &self_attention_->output_weight()};
  if (mlp_) weights.push_back(&mlp_->output_weight());
  if (moe_) {
    for (auto* w : moe_->output_weights()) weights.push_back(w);
  }
  return weights;
}

void BlockImpl::track_max_logits(bool on) {
  if (latent_attention_) latent_attention_->track_max_logits(on);
  if (self_attention_) self_attention_->track_max_logits(on);
}

torch::Tensor BlockImpl::qk_clip(double tau, const MaxLogitCombine& combine) {
  return latent_attention_ ? latent_attention_->qk_clip(tau, combine) : self_attention_->qk_clip(tau, combine);
}

}  // namespace muonlab::models
