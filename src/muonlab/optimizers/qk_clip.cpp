#include "muonlab/optimizers/qk_clip.h"

#include <limits>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

torch::Tensor head_max_logits(const torch::Tensor& q, const torch::Tensor& k, double scale, bool causal) {
  if (q.dim() != 4 || k.dim() != 4 || q.size(0) != k.size(0) || q.size(3) != k.size(3) || k.size(1) == 0 ||
      q.size(1) % k.size(1) != 0) {
    fail("per-head logits of q {} and k {}: expected [B, H, T, D] and [B, H_kv, S, D] with H_kv dividing H",
         shape_string(q.sizes()), shape_string(k.sizes()));
  }
  torch::NoGradGuard no_grad;
  const auto keys = k.size(1) == q.size(1) ? k : k.repeat_interleave(q.size(1) / k.size(1), 1);
  const int64_t T = q.size(2), S = keys.size(2);
  auto logits = torch::matmul(q.to(torch::kFloat32), keys.to(torch::kFloat32).transpose(-2, -1)) * scale;
  if (causal) {
    const auto future = torch::ones({T, S}, torch::dtype(torch::kBool).device(q.device())).triu(S - T + 1);
    logits = logits.masked_fill(future, -std::numeric_limits<float>::infinity());
  }
  return std::get<0>(logits.transpose(0, 1).reshape({q.size(1), -1}).max(1));
}

torch::Tensor qk_clip_factors(const torch::Tensor& max_logits, double tau) {
  const auto maxima = max_logits.to(torch::kFloat64);
  // Only heads above tau are clipped. Not min(1, tau / S_h): a head whose
  // largest logit is negative (common early in training) would get a negative
  // factor, and its square root would turn the weights into NaN.
  return torch::where(maxima > tau, tau / maxima, torch::ones_like(maxima));
}

void scale_head_rows(const torch::Tensor& weight, const torch::Tensor& bias, int64_t first_row, int64_t head_dim,
                     const torch::Tensor& factors) {
  torch::NoGradGuard no_grad;
  const int64_t heads = factors.size(0);
  const auto per_row = factors.to(weight.device()).repeat_interleave(head_dim);
  weight.narrow(0, first_row, heads * head_dim).mul_(per_row.unsqueeze(1).to(weight.scalar_type()));
  if (bias.defined()) bias.narrow(0, first_row, heads * head_dim).mul_(per_row.to(bias.scalar_type()));
}

void scale_head_logits(const QueryKeyRows& rows, const torch::Tensor& gamma) {
  const int64_t heads = gamma.numel();
  const bool whole_heads = heads > 0 && rows.query.dim() == 2 && rows.key.dim() == 2 &&
                           rows.query.size(0) % heads == 0 && rows.key.size(0) > 0 &&
                           rows.key.size(0) % (rows.query.size(0) / heads) == 0;
  if (!whole_heads) {
    fail("QK-clip of {} heads: query rows {} and key rows {} are not whole heads of one size",
         heads, shape_string(rows.query.sizes()), shape_string(rows.key.sizes()));
  }
  const int64_t head_dim = rows.query.size(0) / heads;
  const int64_t key_heads = rows.key.size(0) / head_dim;
  if (heads % key_heads != 0) {
    fail("QK-clip: {} key heads cannot serve {} query heads (expected a divisor)", key_heads, heads);
  }
  // Logits are bilinear in the query and key rows (RoPE rotates both alike).
  const bool shared_keys = key_heads != heads;
  scale_head_rows(rows.query, rows.query_bias, 0, head_dim, shared_keys ? gamma : gamma.sqrt());
  if (!shared_keys) scale_head_rows(rows.key, rows.key_bias, 0, head_dim, gamma.sqrt());
}

}  // namespace muonlab::optim
