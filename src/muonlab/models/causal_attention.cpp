#include "muonlab/models/causal_attention.h"

#include <cmath>

#include "muonlab/core/torch_compat.h"

namespace muonlab::models {

torch::Tensor causal_mask(int64_t queries, int64_t keys, const torch::Device& device) {
  const auto options = torch::dtype(torch::kBool).device(device);
  return torch::ones({queries, keys}, options).tril(keys - queries);
}

torch::Tensor causal_softmax(const torch::Tensor& scores) {
  const auto mask = causal_mask(scores.size(-2), scores.size(-1), scores.device());
  const auto wide = scores.scalar_type() == torch::kFloat64 ? scores : scores.to(torch::kFloat32);
  const auto masked = wide.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::softmax(masked, -1).to(scores.scalar_type());
}

torch::Tensor causal_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  return torch::matmul(causal_softmax(scores), v);
}

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
  const int64_t queries = q.size(-2);
  const int64_t keys = k.size(-2);
  // is_causal aligns the mask top-left, right only when nothing is cached. A
  // single new query sees every key; other cached cases need the explicit mask.
  if (queries == keys) return compat::scaled_dot_product_attention(q, k, v, {}, true);
  if (queries == 1) return compat::scaled_dot_product_attention(q, k, v, {}, false);
  return compat::scaled_dot_product_attention(q, k, v, causal_mask(queries, keys, q.device()),
                                              false);
}

}  // namespace muonlab::models
