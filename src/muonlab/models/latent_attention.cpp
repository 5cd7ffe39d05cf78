#include "muonlab/models/latent_attention.h"

#include <cmath>

#include "muonlab/models/causal_attention.h"
#include "muonlab/models/linear.h"

namespace muonlab::models {

using optim::ParamRole;

LatentAttentionImpl::LatentAttentionImpl(const ModelConfig& config,
                                         std::shared_ptr<const RotaryEmbedding> rope)
    : n_head_(config.n_head),
      head_dim_(config.head_dim()),
      rope_dim_(config.mla.rope_dim),
      bias_(config.bias),
      compress_queries_(config.mla.q_latent > 0),
      rope_(std::move(rope)) {
  const int64_t d = config.d_model;
  const int64_t latent = config.mla.kv_latent;
  const int64_t heads_width = n_head_ * head_dim_;
  kv_down_ = register_module("wdkv", make_linear(d, latent, bias_));
  kv_norm_ = register_module("kv_norm", Norm(NormKind::kRmsNorm, latent, config.norm_eps, false));
  // No bias on W_uk even when the config asks for biases: q . b_uk is the same
  // for every key, so softmax cancels it and its gradient is always zero.
  key_up_ = register_module("wuk", make_linear(latent, heads_width, false));
  value_up_ = register_module("wuv", make_linear(latent, heads_width, bias_));
  rope_key_ = register_module("wkr", make_linear(d, rope_dim_, bias_));
  const int64_t query_source = compress_queries_ ? config.mla.q_latent : d;
  if (compress_queries_) {
    q_down_ = register_module("wdq", make_linear(d, query_source, bias_));
    q_norm_ = register_module(
        "q_norm", Norm(NormKind::kRmsNorm, query_source, config.norm_eps, false));
    q_up_ = register_module("wuq", make_linear(query_source, heads_width, bias_));
  } else {
    q_up_ = register_module("wq", make_linear(d, heads_width, bias_));
  }
  q_rope_ = register_module("wqr", make_linear(query_source, n_head_ * rope_dim_, bias_));
  out_ = register_module("wo", make_linear(heads_width, d, bias_));
}

torch::Tensor LatentAttentionImpl::split_heads(const torch::Tensor& x, int64_t head_dim) const {
  return x.view({x.size(0), x.size(1), -1, head_dim}).transpose(1, 2);
}

LatentAttentionImpl::Queries LatentAttentionImpl::queries(const torch::Tensor& x,
                                                          int64_t position) {
  const auto source = compress_queries_ ? q_norm_(q_down_(x)) : x;
  return {split_heads(q_up_(source), head_dim_),
          rope_->apply(split_heads(q_rope_(source), rope_dim_), position)};
}

torch::Tensor LatentAttentionImpl::rotary_key(const torch::Tensor& x, int64_t position) {
  return rope_->apply(rope_key_(x).unsqueeze(1), position);
}

torch::Tensor LatentAttentionImpl::forward(const torch::Tensor& x, LayerKvCache* cache,
                                           int64_t position) {
  const auto q = queries(x, position);
  auto latent = kv_norm_(kv_down_(x));                // [B, T, d_c]
  auto rope_key = rotary_key(x, position).squeeze(1);  // [B, T, d_R]
  torch::Tensor heads;                                  // [B, H, T, d_h]
  if (cache == nullptr) {
    heads = attend_expanded(q, latent, rope_key);
  } else {
    const int64_t new_tokens = x.size(1);
    cache->latent.narrow(1, position, new_tokens).copy_(latent);
    cache->rope_key.narrow(1, position, new_tokens).copy_(rope_key);
    const auto cached_latent = cache->latent.narrow(1, 0, position + new_tokens);
    const auto cached_rope_key = cache->rope_key.narrow(1, 0, position + new_tokens);
    // Decoding absorbs the up-projections and never expands the cache; a
    // prefill chunk has many queries to amortize the expansion over, so it
    // runs the expanded form, as DeepSeek-V2 does.
    heads = new_tokens == 1 ? attend_absorbed(q, cached_latent, cached_rope_key)
                            : attend_expanded(q, cached_latent, cached_rope_key);
  }
  return out_(heads.transpose(1, 2).reshape({x.size(0), x.size(1), -1}));
}

torch::Tensor LatentAttentionImpl::attend_expanded(const Queries& q, const torch::Tensor& latent,
                                                   const torch::Tensor& rope_key) {
  const auto k_content = split_heads(key_up_(latent), head_dim_);
  const auto v = split_heads(value_up_(latent), head_dim_);
  const auto k_rotary = rope_key.unsqueeze(1).expand({-1, n_head_, -1, -1});
  const auto q_full = torch::cat({q.content, q.rotary}, -1);
  const auto k_full = torch::cat({k_content, k_rotary}, -1);
  if (max_logits_.enabled() && is_training()) {
    max_logits_.observe(q_full, k_full, 1.0 / std::sqrt(static_cast<double>(q_full.size(-1))));
  }
  return causal_attention(q_full, k_full, v);  // scale 1/sqrt(d_h + d_R)
}

torch::Tensor LatentAttentionImpl::qk_clip(double tau, const MaxLogitCombine& combine) {
  const torch::Tensor max_logits = max_logits_.take(combine);
  if (!max_logits.defined()) return max_logits;
  const torch::Tensor gamma = qk_clip_factors(max_logits, tau);
  scale_head_rows(q_up_, 0, head_dim_, gamma.sqrt());
  scale_head_rows(key_up_, 0, head_dim_, gamma.sqrt());
  scale_head_rows(q_rope_, 0, rope_dim_, gamma);
  return max_logits;
}

// q_C . (W_uk c) = (W_uk^T q_C) . c, and sum_t p_t (W_uv c_t + b_uv) =
// W_uv (sum_t p_t c_t) + b_uv since the p_t sum to one.
namespace {

// x [B, H, L, n] times per-head weights w [H, n, m] -> [B, H, L, m], heads
// first so each head's weight is read once (broadcasting over B copies it B times).
torch::Tensor per_head_matmul(const torch::Tensor& x, const torch::Tensor& w) {
  const int64_t batch = x.size(0), heads = x.size(1), length = x.size(2);
  const auto rows = x.transpose(0, 1).reshape({heads, batch * length, x.size(3)});
  return torch::bmm(rows, w).view({heads, batch, length, w.size(2)}).transpose(0, 1);
}

}  // namespace

torch::Tensor LatentAttentionImpl::attend_absorbed(const Queries& q, const torch::Tensor& latent,
                                                   const torch::Tensor& rope_key) {
  const int64_t batch = latent.size(0);
  const int64_t queries = q.content.size(2);
  const int64_t latent_dim = latent.size(-1);
  const auto w_uk = key_up_->weight.view({n_head_, head_dim_, latent_dim});
  const auto w_uv = value_up_->weight.view({n_head_, head_dim_, latent_dim});
  // Every head reads the same latent, so the heads are folded into the rows
  // of one bmm per sequence: [B, H L, d] x [B, d, S]. Broadcasting the latent
  // over the heads would copy it H times per layer and step.
  const auto fold = [&](const torch::Tensor& t) { return t.reshape({batch, -1, t.size(-1)}); };
  const auto q_latent = per_head_matmul(q.content, w_uk);  // [B, H, L, d_c]
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_ + rope_dim_));
  const auto scores = (torch::bmm(fold(q_latent), latent.transpose(1, 2)) +
                       torch::bmm(fold(q.rotary), rope_key.transpose(1, 2))) *
                      scale;  // [B, H L, S]
  const auto weights = causal_softmax(scores.view({batch, n_head_, queries, -1}));
  const auto mixed_latent = torch::bmm(fold(weights), latent)  // [B, H L, d_c]
                                .view({batch, n_head_, queries, latent_dim});
  auto heads = per_head_matmul(mixed_latent, w_uv.transpose(-2, -1));  // [B, H, L, d_h]
  if (bias_) heads = heads + value_up_->bias.view({n_head_, 1, head_dim_});
  return heads;
}

ParamTags LatentAttentionImpl::param_tags() const {
  ParamTags tags;
  const auto add = [&](const ParamTags& more) { tags.insert(tags.end(), more.begin(), more.end()); };
  add(linear_tags("wdkv", ParamRole::kMlaDown, bias_));
  append_tags(tags, "kv_norm", kv_norm_->param_tags());
  add(linear_tags("wuk", ParamRole::kMlaUp, false, heads_in_rows(n_head_, head_dim_)));
  add(linear_tags("wuv", ParamRole::kMlaUp, bias_, heads_in_rows(n_head_, head_dim_)));
  add(linear_tags("wkr", ParamRole::kAttnK, bias_, heads_in_rows(1, rope_dim_)));
  if (compress_queries_) {
    add(linear_tags("wdq", ParamRole::kMlaDown, bias_));
    append_tags(tags, "q_norm", q_norm_->param_tags());
    add(linear_tags("wuq", ParamRole::kMlaUp, bias_, heads_in_rows(n_head_, head_dim_)));
    add(linear_tags("wqr", ParamRole::kMlaUp, bias_, heads_in_rows(n_head_, rope_dim_)));
  } else {
    add(linear_tags("wq", ParamRole::kAttnQ, bias_, heads_in_rows(n_head_, head_dim_)));
    add(linear_tags("wqr", ParamRole::kAttnQ, bias_, heads_in_rows(n_head_, rope_dim_)));
  }
  add(linear_tags("wo", ParamRole::kAttnO, bias_, heads_in_cols(n_head_, head_dim_)));
  return tags;
}

torch::Tensor& LatentAttentionImpl::output_weight() { return out_->weight; }

}  // namespace muonlab::models
