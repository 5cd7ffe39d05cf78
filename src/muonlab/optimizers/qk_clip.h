// The arithmetic of QK-clip, the "Clip" of Kimi K2's MuonClip (Kimi Team,
// "Kimi K2: Open Agentic Intelligence", 2025; docs/algorithms.md, QK-clip),
// on plain tensors: each head's largest attention logit, the factors
// gamma_h = tau / S_h, and the rescaling of a head's query and key rows by
// them. The models' attention layers (models/qk_clip.h) and the Python
// package (muonlab.qk_clip_) both call it.
#pragma once

#include <torch/torch.h>

namespace muonlab::optim {

// Each head's largest logit q k^T * scale ([H], fp32) for q [B, H, T, D]
// and k [B, H_kv, S, D] (H_kv dividing H: each key head serves H / H_kv
// consecutive query heads, as grouped-query attention repeats them). Causal:
// query t sees the keys up to S - T + t (the last T of S positions).
torch::Tensor head_max_logits(const torch::Tensor& q, const torch::Tensor& k, double scale, bool causal = true);

// gamma_h = tau / S_h for each head whose maximum S_h exceeds tau, 1 for
// the others (including heads whose logits are all negative).
torch::Tensor qk_clip_factors(const torch::Tensor& max_logits, double tau);

// Multiplies rows [first_row + h * head_dim, first_row + (h + 1) * head_dim)
// of `weight` (and of `bias`, when defined) by factors[h], for every head h,
// in place.
void scale_head_rows(const torch::Tensor& weight, const torch::Tensor& bias, int64_t first_row, int64_t head_dim,
                     const torch::Tensor& factors);

// One attention's query and key projections: weights [H * head_dim, in] and
// [H_kv * head_dim, in] (views of a fused weight work), biases optional.
struct QueryKeyRows {
  torch::Tensor query, query_bias, key, key_bias;
};

// Multiplies every logit of head h by gamma[h]: the query and the key rows
// of the head by sqrt(gamma_h) each, or, where a key head serves several
// query heads (H_kv < H), the query rows by gamma_h and the keys not at all.
// Fails naming the shapes when the rows are not whole heads.
void scale_head_logits(const QueryKeyRows& rows, const torch::Tensor& gamma);

}  // namespace muonlab::optim
