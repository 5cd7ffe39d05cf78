// Multi-head causal self-attention with grouped-query heads (GQA: fewer K/V
// heads, each shared by n_head / n_kv_head query heads), optional QK-norm and
// RoPE. GPT-2 style fuses Q, K, V into one weight (c_attn, c_proj);
// LLaMA style keeps wq, wk, wv, wo.
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

class SelfAttentionImpl : public torch::nn::Module {
 public:
  // rope is null for learned positions.
  SelfAttentionImpl(const ModelConfig& config, std::shared_ptr<const RotaryEmbedding> rope);

  // x: [B, T, C]. With a cache, the T tokens sit at positions
  // position .. position + T - 1 and attend to everything cached before them.
  torch::Tensor forward(const torch::Tensor& x, LayerKvCache* cache = nullptr,
                        int64_t position = 0);
  ParamTags param_tags() const;
  torch::Tensor& output_weight();

  // QK-clip (qk_clip.h): training forwards record each head's largest
  // logit while tracking is on; qk_clip(tau) rescales the heads above tau
  // (MHA: query and key rows by sqrt(gamma) each; GQA, whose key heads are
  // shared: the query rows by gamma) and returns the maxima it acted on
  // ([n_head], or empty when none were seen), starting afresh.
  void track_max_logits(bool on) { max_logits_.enable(on); }
  torch::Tensor qk_clip(double tau, const MaxLogitCombine& combine = {});

 private:
  // [B, T, heads * d_h] -> [B, heads, T, d_h]
  torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) const;

  int64_t n_head_;
  int64_t n_kv_head_;
  int64_t head_dim_;
  bool bias_;
  bool fused_;
  std::shared_ptr<const RotaryEmbedding> rope_;
  torch::nn::Linear qkv_{nullptr};  // fused
  torch::nn::Linear q_{nullptr}, k_{nullptr}, v_{nullptr};
  torch::nn::Linear out_{nullptr};
  Norm q_norm_{nullptr}, k_norm_{nullptr};
  MaxLogitTracker max_logits_;
};
TORCH_MODULE(SelfAttention);

}  // namespace muonlab::models
