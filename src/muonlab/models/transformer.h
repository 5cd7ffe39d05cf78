// The decoder-only language model: token (and learned position) embeddings,
// n_layer blocks, a final norm and the output head (tied to the token
// embedding or not). Parameter names follow nanoGPT: wte, wpe, h.<i>.ln_1,
// h.<i>.attn.c_attn, ..., ln_f, lm_head.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "muonlab/models/block.h"
#include "muonlab/models/kv_cache.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/rotary.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::models {

struct ModelOutput {
  torch::Tensor logits;         // [B, T, vocab]
  torch::Tensor aux_loss;       // sum of the MoE balance losses; 0 for dense models
  std::vector<MoeStats> moe;    // one per MoE layer, in block order
};

class TransformerImpl : public torch::nn::Module {
 public:
  // Validates the config; initializes like GPT-2 (normal(0, init_std), residual
  // writers scaled by 1/sqrt(2 n_layer), zero biases) from torch's global RNG.
  explicit TransformerImpl(ModelConfig config);

  // tokens: [B, T] int64. With a cache, the tokens continue the cached
  // sequence and the cache advances past them.
  ModelOutput forward(const torch::Tensor& tokens, KvCache* cache = nullptr);
  // forward() with logits only where `where` ([B, T] bool) is true: [N,
  // vocab], in row-major order. The output head is most of a small model's
  // work, so scoring a few positions of each row need not pay it at all.
  ModelOutput forward_where(const torch::Tensor& tokens, const torch::Tensor& where);

  const ModelConfig& config() const { return config_; }

  // Every parameter with its role, head layout, block and expert index.
  std::vector<optim::TaggedParam> tagged_parameters() const;

  // QK-clip (qk_clip.h): with tracking on, training forwards record each
  // head's largest attention logit; qk_clip(tau), after an optimizer step,
  // rescales every head above tau in every layer and returns the maxima it
  // acted on, [n_head] per layer (empty ones for layers that saw nothing).
  void track_max_logits(bool on);
  std::vector<torch::Tensor> qk_clip(double tau, const MaxLogitCombine& combine = {});

 private:
  void initialize();
  torch::Tensor output_weight();
  // The final norm's output [B, T, d]; fills the MoE parts of `out`.
  torch::Tensor final_hidden(const torch::Tensor& tokens, KvCache* cache, ModelOutput& out);
  torch::Tensor logits_of(const torch::Tensor& hidden);

  ModelConfig config_;
  torch::nn::Embedding wte_{nullptr};
  torch::nn::Embedding wpe_{nullptr};
  torch::nn::ModuleList h_;    // registers the blocks as h.0, h.1, ...
  std::vector<Block> blocks_;  // the same blocks, typed
  Norm ln_f_{nullptr};
  torch::nn::Linear lm_head_{nullptr};
};
TORCH_MODULE(Transformer);

// Next-token cross-entropy of logits against targets ([B, T] ids; -1 is
// ignored), in float32 or wider.
torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& targets);

// The training objective: next-token loss plus the MoE balance loss.
torch::Tensor training_loss(const ModelOutput& output, const torch::Tensor& targets);

}  // namespace muonlab::models
