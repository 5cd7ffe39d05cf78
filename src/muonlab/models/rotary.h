// Rotary position embedding (RoPE): rotates each pair (x_j, x_{j+D/2}) of a
// head by angle pos * theta^(-2j/D). A rotation, so it keeps norms, and
// <R_m q, R_n k> depends on m - n only. The "rotate half" pairing of GPT-NeoX
// and Hugging Face LLaMA.
#pragma once

#include <torch/torch.h>

namespace muonlab::models {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  RotaryEmbedding(int64_t head_dim, int64_t max_positions, double theta);

  // x: [B, H, T, D] with D = head_dim; token t sits at position offset + t.
  torch::Tensor apply(const torch::Tensor& x, int64_t offset) const;
  int64_t head_dim() const { return head_dim_; }
  int64_t max_positions() const { return max_positions_; }

 private:
  int64_t head_dim_ = 0;
  int64_t max_positions_ = 0;
  torch::Tensor cos_;  // [max_positions, D], float64 so any dtype gets exact tables
  torch::Tensor sin_;
};

}  // namespace muonlab::models
