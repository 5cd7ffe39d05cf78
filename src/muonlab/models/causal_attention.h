// Causal softmax attention, the core shared by MHA and MLA.
//
// q: [B, H, L, D], k: [B, H, S, D], v: [B, H, S, Dv] with L <= S: the L
// queries are the last L positions of the S keys (S - L of them are cached),
// so query i may attend to keys 0 .. S - L + i. Scale 1 / sqrt(D).
#pragma once

#include <torch/torch.h>

namespace muonlab::models {

// Through LibTorch's scaled_dot_product_attention (fused kernels on GPU).
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v);

// The same, written out: softmax(q k^T / sqrt(D) + mask) v, softmax in
// float32 or wider. The reference the fused path is tested against.
torch::Tensor causal_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v);

// [L, S] booleans, true where query i may see key j (j <= S - L + i).
torch::Tensor causal_mask(int64_t queries, int64_t keys, const torch::Device& device);

// Softmax over the last dimension of masked attention scores [.., L, S],
// in float32 or wider, returned in the scores' dtype.
torch::Tensor causal_softmax(const torch::Tensor& scores);

}  // namespace muonlab::models
