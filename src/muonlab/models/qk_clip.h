// QK-clip, the "Clip" of Kimi K2's MuonClip (Kimi Team, "Kimi K2: Open
// Agentic Intelligence", 2025; docs/algorithms.md, QK-clip): the attention
// layers keep, per head, the largest pre-softmax logit the training forward
// passes of a step saw; after the optimizer step, a head whose maximum
// S_h exceeded tau has its query and key weights rescaled so that the same
// inputs would give at most tau: every logit of the head times
// gamma_h = tau / S_h. How the factor is split between query and key
// depends on the attention (self_attention.h, latent_attention.h).
#pragma once

#include <torch/torch.h>

#include <functional>

#include "muonlab/optimizers/qk_clip.h"

namespace muonlab::models {

// Combines a layer's per-head maxima in place before they are used: under
// data parallelism, the maximum over ranks (each rank saw its own batches),
// so every rank clips the same heads by the same factors.
using MaxLogitCombine = std::function<void(torch::Tensor& max_logits)>;

// The per-head maxima of a training step, observed by the attention layers.
class MaxLogitTracker {
 public:
  void enable(bool on) { on_ = on; }
  bool enabled() const { return on_; }
  // q [B, H, T, D] and k [B, H, T, D] (keys expanded per query head), the
  // logits q k^T * scale under the causal mask: folds each head's maximum in.
  void observe(const torch::Tensor& q, const torch::Tensor& k, double scale);
  // The maxima since the last take ([H], fp32; empty when nothing was
  // observed), passed through `combine` if given, and a fresh start.
  torch::Tensor take(const MaxLogitCombine& combine = {});

 private:
  bool on_ = false;
  torch::Tensor max_;
};

// The plain-tensor arithmetic, shared with the Python package.
using optim::head_max_logits;
using optim::qk_clip_factors;
using optim::QueryKeyRows;
using optim::scale_head_logits;
using optim::scale_head_rows;

// scale_head_rows on a Linear's weight and bias.
void scale_head_rows(torch::nn::Linear& linear, int64_t first_row, int64_t head_dim, const torch::Tensor& factors);

}  // namespace muonlab::models
