// One pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)).
// Attention is MHA/GQA or MLA and the feed-forward dense or MoE, by config.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>

#include "muonlab/models/kv_cache.h"
#include "muonlab/models/latent_attention.h"
#include "muonlab/models/mlp.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/moe.h"
#include "muonlab/models/norm.h"
#include "muonlab/models/param_tags.h"
#include "muonlab/models/self_attention.h"

namespace muonlab::models {

struct BlockOutput {
  torch::Tensor x;
  torch::Tensor aux_loss;         // MoE balance loss; undefined for dense blocks
  std::optional<MoeStats> moe;
};

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& config, std::shared_ptr<const RotaryEmbedding> rope);
  BlockOutput forward(const torch::Tensor& x, LayerKvCache* cache = nullptr,
                      int64_t position = 0);
  ParamTags param_tags() const;
  // Weights that write into the residual stream (attention output, MLP and
  // expert down-projections): GPT-2 scales their init by 1/sqrt(2 n_layer).
  std::vector<torch::Tensor*> residual_output_weights();

  // QK-clip of the block's attention (qk_clip.h).
  void track_max_logits(bool on);
  torch::Tensor qk_clip(double tau, const MaxLogitCombine& combine = {});

 private:
  torch::Tensor attend(const torch::Tensor& x, LayerKvCache* cache, int64_t position);

  Norm ln_1_{nullptr}, ln_2_{nullptr};
  SelfAttention self_attention_{nullptr};
  LatentAttention latent_attention_{nullptr};
  Mlp mlp_{nullptr};
  Moe moe_{nullptr};
};
TORCH_MODULE(Block);

}  // namespace muonlab::models
