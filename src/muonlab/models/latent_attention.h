// Multi-head Latent Attention (DeepSeek-V2; docs/algorithms.md, Multi-head
// Latent Attention):
//
//   c_kv = RMSNorm(W_dkv h)      k_C = W_uk c_kv     v = W_uv c_kv
//   c_q  = RMSNorm(W_dq h)       q_C = W_uq c_q      (or W_q h, uncompressed)
//   q_R  = RoPE(W_qr c_q)        k_R = RoPE(W_kr h)  (one rotary key for all heads)
//   q_i = [q_C,i ; q_R,i]   k_i = [k_C,i ; k_R]   scale 1/sqrt(d_h + d_R)
//
// Training and prefill run the expanded form above. The cache keeps only
// c_kv and k_R per token; decoding one token at a time absorbs W_uk into the
// query and W_uv into the output, so the cached latents are never expanded
// back to keys and values.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "muonlab/models/kv_cache.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/norm.h"
#include "muonlab/models/param_tags.h"
#include "muonlab/models/qk_clip.h"
#include "muonlab/models/rotary.h"

namespace muonlab::models {

class LatentAttentionImpl : public torch::nn::Module {
 public:
  // rope: a table of head size d_R (MLA's decoupled rotary part).
  LatentAttentionImpl(const ModelConfig& config, std::shared_ptr<const RotaryEmbedding> rope);

  torch::Tensor forward(const torch::Tensor& x, LayerKvCache* cache = nullptr,
                        int64_t position = 0);
  ParamTags param_tags() const;
  torch::Tensor& output_weight();

  // QK-clip (qk_clip.h), as Kimi K2 applies it to MLA: a head's content
  // query and key rows (W_uq or W_q, and W_uk) by sqrt(gamma) each, its
  // rotary query rows (W_qr) by gamma, the rotary key, shared by all
  // heads, untouched. Returns the maxima it acted on ([n_head], or empty).
  void track_max_logits(bool on) { max_logits_.enable(on); }
  torch::Tensor qk_clip(double tau, const MaxLogitCombine& combine = {});

 private:
  struct Queries {
    torch::Tensor content;  // q_C: [B, H, T, d_h]
    torch::Tensor rotary;   // q_R: [B, H, T, d_R], rotated
  };
  Queries queries(const torch::Tensor& x, int64_t position);
  torch::Tensor rotary_key(const torch::Tensor& x, int64_t position);  // [B, 1, T, d_R]
  torch::Tensor attend_expanded(const Queries& q, const torch::Tensor& latent,
                                const torch::Tensor& rope_key);
  torch::Tensor attend_absorbed(const Queries& q, const torch::Tensor& latent,
                                const torch::Tensor& rope_key);
  torch::Tensor split_heads(const torch::Tensor& x, int64_t head_dim) const;

  int64_t n_head_;
  int64_t head_dim_;
  int64_t rope_dim_;
  bool bias_;
  bool compress_queries_;
  std::shared_ptr<const RotaryEmbedding> rope_;
  torch::nn::Linear kv_down_{nullptr}, key_up_{nullptr}, value_up_{nullptr};
  torch::nn::Linear rope_key_{nullptr};
  torch::nn::Linear q_down_{nullptr}, q_up_{nullptr}, q_rope_{nullptr};
  torch::nn::Linear out_{nullptr};
  Norm kv_norm_{nullptr}, q_norm_{nullptr};
  MaxLogitTracker max_logits_;
};
TORCH_MODULE(LatentAttention);

}  // namespace muonlab::models
