#include "muonlab/models/self_attention.h"

#include <cmath>

#include "muonlab/models/causal_attention.h"
#include "muonlab/models/linear.h"

namespace muonlab::models {

using optim::ParamRole;

SelfAttentionImpl::SelfAttentionImpl(const ModelConfig& config,
                                     std::shared_ptr<const RotaryEmbedding> rope)
    : n_head_(config.n_head),
      n_kv_head_(config.kv_heads()),
      head_dim_(config.head_dim()),
      bias_(config.bias),
      fused_(config.fused_qkv),
      rope_(std::move(rope)) {
  const int64_t d = config.d_model;
  const int64_t q_width = n_head_ * head_dim_;
  const int64_t kv_width = n_kv_head_ * head_dim_;
  if (fused_) {
    qkv_ = register_module("c_attn", make_linear(d, q_width + 2 * kv_width, bias_));
    out_ = register_module("c_proj", make_linear(q_width, d, bias_));
  } else {
    q_ = register_module("wq", make_linear(d, q_width, bias_));
    k_ = register_module("wk", make_linear(d, kv_width, bias_));
    v_ = register_module("wv", make_linear(d, kv_width, bias_));
    out_ = register_module("wo", make_linear(q_width, d, bias_));
  }
  if (config.qk_norm) {
    q_norm_ = register_module("q_norm", Norm(config.norm, head_dim_, config.norm_eps, false));
    k_norm_ = register_module("k_norm", Norm(config.norm, head_dim_, config.norm_eps, false));
  }
}

torch::Tensor SelfAttentionImpl::split_heads(const torch::Tensor& x, int64_t heads) const {
  return x.view({x.size(0), x.size(1), heads, head_dim_}).transpose(1, 2);
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, LayerKvCache* cache,
                                         int64_t position) {
  torch::Tensor q, k, v;
  if (fused_) {
    const auto parts = qkv_(x).split_with_sizes(
        {n_head_ * head_dim_, n_kv_head_ * head_dim_, n_kv_head_ * head_dim_}, -1);
    q = parts[0], k = parts[1], v = parts[2];
  } else {
    q = q_(x), k = k_(x), v = v_(x);
  }
  q = split_heads(q, n_head_);
  k = split_heads(k, n_kv_head_);
  v = split_heads(v, n_kv_head_);
  if (q_norm_) {
    q = q_norm_(q);
    k = k_norm_(k);
  }
  if (rope_) {
    q = rope_->apply(q, position);
    k = rope_->apply(k, position);
  }
  if (cache != nullptr) {
    const int64_t new_tokens = x.size(1);
    cache->keys.narrow(2, position, new_tokens).copy_(k);
    cache->values.narrow(2, position, new_tokens).copy_(v);
    k = cache->keys.narrow(2, 0, position + new_tokens);
    v = cache->values.narrow(2, 0, position + new_tokens);
  }
  if (n_kv_head_ != n_head_) {  // GQA: each K/V head serves a group of query heads
    k = k.repeat_interleave(n_head_ / n_kv_head_, 1);
    v = v.repeat_interleave(n_head_ / n_kv_head_, 1);
  }
  if (max_logits_.enabled() && is_training() && cache == nullptr) {
    max_logits_.observe(q, k, 1.0 / std::sqrt(static_cast<double>(head_dim_)));
  }
  const auto y = causal_attention(q, k, v).transpose(1, 2).reshape({x.size(0), x.size(1), -1});
  return out_(y);
}

torch::Tensor SelfAttentionImpl::qk_clip(double tau, const MaxLogitCombine& combine) {
  const torch::Tensor max_logits = max_logits_.take(combine);
  if (!max_logits.defined()) return max_logits;
  torch::NoGradGuard no_grad;  // the rows below are views of the weights, scaled in place
  QueryKeyRows rows;
  if (fused_) {
    const auto& bias = qkv_->bias;
    const int64_t query_rows = n_head_ * head_dim_, key_rows = n_kv_head_ * head_dim_;
    rows.query = qkv_->weight.narrow(0, 0, query_rows);
    rows.key = qkv_->weight.narrow(0, query_rows, key_rows);
    if (bias.defined()) {
      rows.query_bias = bias.narrow(0, 0, query_rows);
      rows.key_bias = bias.narrow(0, query_rows, key_rows);
    }
  } else {
    rows = {q_->weight, q_->bias, k_->weight, k_->bias};
  }
  scale_head_logits(rows, qk_clip_factors(max_logits, tau));
  return max_logits;
}

ParamTags SelfAttentionImpl::param_tags() const {
  ParamTags tags;
  const auto add = [&](const ParamTags& more) { tags.insert(tags.end(), more.begin(), more.end()); };
  if (fused_) {
    const int64_t heads = n_head_ + 2 * n_kv_head_;
    add(linear_tags("c_attn", ParamRole::kAttnQKV, bias_,
                    heads_in_rows(heads, head_dim_, {n_head_, n_kv_head_, n_kv_head_})));
    add(linear_tags("c_proj", ParamRole::kAttnO, bias_, heads_in_cols(n_head_, head_dim_)));
  } else {
    add(linear_tags("wq", ParamRole::kAttnQ, bias_, heads_in_rows(n_head_, head_dim_)));
    add(linear_tags("wk", ParamRole::kAttnK, bias_, heads_in_rows(n_kv_head_, head_dim_)));
    add(linear_tags("wv", ParamRole::kAttnV, bias_, heads_in_rows(n_kv_head_, head_dim_)));
    add(linear_tags("wo", ParamRole::kAttnO, bias_, heads_in_cols(n_head_, head_dim_)));
  }
  if (q_norm_) {
    append_tags(tags, "q_norm", q_norm_->param_tags());
    append_tags(tags, "k_norm", k_norm_->param_tags());
  }
  return tags;
}

torch::Tensor& SelfAttentionImpl::output_weight() { return out_->weight; }

}  // namespace muonlab::models
