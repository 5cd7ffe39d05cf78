#include "muonlab/models/rotary.h"

#include "muonlab/core/errors.h"

namespace muonlab::models {

RotaryEmbedding::RotaryEmbedding(int64_t head_dim, int64_t max_positions, double theta)
    : head_dim_(head_dim), max_positions_(max_positions) {
  const auto options = torch::dtype(torch::kFloat64);
  const auto inv_freq =
      torch::pow(theta, -torch::arange(0, head_dim, 2, options) / static_cast<double>(head_dim));
  const auto angles = torch::outer(torch::arange(max_positions, options), inv_freq);
  const auto both_halves = torch::cat({angles, angles}, -1);  // [T, D]
  cos_ = both_halves.cos();
  sin_ = both_halves.sin();
}

torch::Tensor RotaryEmbedding::apply(const torch::Tensor& x, int64_t offset) const {
  const int64_t length = x.size(-2);
  if (offset + length > max_positions_) {
    fail("RoPE: position {} is past the table of {} positions (block_size)", offset + length - 1,
         max_positions_);
  }
  if (x.size(-1) != head_dim_) {
    fail("RoPE: head size {} does not match the table's {}", x.size(-1), head_dim_);
  }
  const auto options = x.options();
  const auto cos = cos_.narrow(0, offset, length).to(options);
  const auto sin = sin_.narrow(0, offset, length).to(options);
  const auto halves = x.chunk(2, -1);
  const auto rotated_half = torch::cat({-halves[1], halves[0]}, -1);
  return x * cos + rotated_half * sin;
}

}  // namespace muonlab::models
