#include "muonlab/models/model_stats.h"

#include "muonlab/models/kv_cache.h"

namespace muonlab::models {

namespace {

// Parameters of a module, split into matmul weights and vectors (biases,
// norm gains), since FLOPs count only the former.
struct Count {
  int64_t matmul = 0;
  int64_t vectors = 0;
  int64_t total() const { return matmul + vectors; }
  Count& operator+=(const Count& other) {
    matmul += other.matmul;
    vectors += other.vectors;
    return *this;
  }
};

Count linear(int64_t in, int64_t out, bool bias) { return {in * out, bias ? out : 0}; }

Count norm(NormKind kind, int64_t dim, bool bias) {
  return {0, dim + (bias && kind == NormKind::kLayerNorm ? dim : 0)};
}

Count mlp(MlpKind kind, int64_t d, int64_t hidden, bool bias) {
  Count n = linear(d, hidden, bias);
  if (kind == MlpKind::kSwiglu) n += linear(d, hidden, bias);
  n += linear(hidden, d, bias);
  return n;
}

Count self_attention(const ModelConfig& c) {
  const int64_t d = c.d_model, q = c.n_head * c.head_dim(), kv = c.kv_heads() * c.head_dim();
  Count n = linear(d, q + 2 * kv, c.bias);  // fused or not, the same numbers
  n += linear(q, d, c.bias);
  if (c.qk_norm) {
    n += norm(c.norm, c.head_dim(), false);
    n += norm(c.norm, c.head_dim(), false);
  }
  return n;
}

Count latent_attention(const ModelConfig& c) {
  const int64_t d = c.d_model, heads = c.n_head * c.head_dim();
  const int64_t latent = c.mla.kv_latent, rope = c.mla.rope_dim, q_latent = c.mla.q_latent;
  Count n = linear(d, latent, c.bias);
  n += norm(NormKind::kRmsNorm, latent, false);
  n += linear(latent, heads, false);   // W_uk, never a bias
  n += linear(latent, heads, c.bias);  // W_uv
  n += linear(d, rope, c.bias);        // W_kr
  n += linear(heads, d, c.bias);       // W_o
  if (q_latent > 0) {
    n += linear(d, q_latent, c.bias);
    n += norm(NormKind::kRmsNorm, q_latent, false);
  }
  const int64_t query_source = q_latent > 0 ? q_latent : d;
  n += linear(query_source, heads, c.bias);
  n += linear(query_source, c.n_head * rope, c.bias);
  return n;
}

struct FeedForward {
  Count total;
  Count active;  // per token
};

FeedForward feed_forward(const ModelConfig& c) {
  if (c.feed_forward == FeedForwardKind::kDense) {
    const auto n = mlp(c.mlp, c.d_model, c.dense_hidden(), c.bias);
    return {n, n};
  }
  const Count expert = mlp(MlpKind::kSwiglu, c.d_model, c.moe.expert_hidden, c.bias);
  const auto times = [](Count n, int64_t k) { return Count{n.matmul * k, n.vectors * k}; };
  FeedForward ffn{linear(c.d_model, c.moe.num_routed, false),
                  linear(c.d_model, c.moe.num_routed, false)};
  ffn.total += times(expert, c.moe.num_shared + c.moe.num_routed);
  ffn.active += times(expert, c.moe.num_shared + c.moe.top_k);
  return ffn;
}

}  // namespace

double ModelStats::forward_flops_per_token(int64_t sequence) const {
  const double matmuls = 2.0 * static_cast<double>(active_matmul_weights);
  const double attention = 2.0 * static_cast<double>(attention_layers * sequence *
                                                     attention_heads * (query_key_dim + value_dim));
  return matmuls + attention;
}

double ModelStats::training_flops_per_token(int64_t sequence) const {
  return 3.0 * forward_flops_per_token(sequence);
}

ModelStats model_stats(const ModelConfig& c) {
  c.validate();
  const bool mla = c.attention == AttentionKind::kMla;
  Count block = mla ? latent_attention(c) : self_attention(c);
  block += norm(c.norm, c.d_model, c.bias);
  block += norm(c.norm, c.d_model, c.bias);
  const auto ffn = feed_forward(c);
  const int64_t vocab_matrix = c.vocab_size * c.d_model;

  ModelStats s;
  s.embedding_parameters =
      vocab_matrix + (c.position == PositionKind::kLearned ? c.block_size * c.d_model : 0);
  s.parameters = s.embedding_parameters + c.n_layer * (block.total() + ffn.total.total()) +
                 norm(c.norm, c.d_model, c.bias).total() + (c.tie_embeddings ? 0 : vocab_matrix);
  s.active_parameters =
      s.parameters - c.n_layer * (ffn.total.total() - ffn.active.total());
  s.active_matmul_weights = c.n_layer * (block.matmul + ffn.active.matmul) + vocab_matrix;
  s.kv_cache_numbers_per_token = kv_cache_numbers_per_token(c);
  s.attention_layers = c.n_layer;
  s.attention_heads = c.n_head;
  s.query_key_dim = c.head_dim() + (mla ? c.mla.rope_dim : 0);
  s.value_dim = c.head_dim();
  return s;
}

}  // namespace muonlab::models
