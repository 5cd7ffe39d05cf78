// RoPE is a rotation: it keeps norms, and the score between a rotated query
// at position m and key at n depends only on m - n.
#include <gtest/gtest.h>

#include "muonlab/models/rotary.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

TEST(Rotary, KeepsTheNormOfEveryHeadVector) {
  const RotaryEmbedding rope(8, 64, 10000.0);
  torch::manual_seed(0);
  const auto x = torch::randn({2, 3, 16, 8}, torch::kFloat64);
  const auto rotated = rope.apply(x, 5);
  EXPECT_TENSOR_NEAR(rotated.norm(2, -1), x.norm(2, -1), 1e-12);
  EXPECT_GT(testing::max_abs_diff(rotated, x), 0.1);  // it did rotate
}

TEST(Rotary, PositionZeroIsTheIdentity) {
  const RotaryEmbedding rope(6, 8, 500.0);
  const auto x = torch::randn({1, 1, 1, 6}, torch::kFloat64);
  EXPECT_TENSOR_NEAR(rope.apply(x, 0), x, 0);
}

TEST(Rotary, ScoresDependOnlyOnRelativePosition) {
  const RotaryEmbedding rope(8, 128, 10000.0);
  torch::manual_seed(1);
  const auto q = torch::randn({1, 1, 1, 8}, torch::kFloat64);
  const auto k = torch::randn({1, 1, 1, 8}, torch::kFloat64);
  const auto score = [&](int64_t m, int64_t n) {
    return (rope.apply(q, m) * rope.apply(k, n)).sum().item<double>();
  };
  for (const int64_t shift : {1, 17, 60}) {
    EXPECT_NEAR(score(3, 1), score(3 + shift, 1 + shift), 1e-12) << "shift " << shift;
    EXPECT_NEAR(score(10, 20), score(10 + shift, 20 + shift), 1e-12) << "shift " << shift;
  }
  EXPECT_GT(std::abs(score(3, 1) - score(1, 3)), 1e-6);  // but the offset's sign matters
}

TEST(Rotary, OffsetEqualsSlicingALongerSequence) {
  const RotaryEmbedding rope(4, 32, 10000.0);
  const auto x = torch::randn({1, 2, 10, 4}, torch::kFloat64);
  const auto whole = rope.apply(x, 0);
  EXPECT_TENSOR_NEAR(rope.apply(x.narrow(2, 6, 4), 6), whole.narrow(2, 6, 4), 1e-14);
}

TEST(Rotary, PastTheTableFailsNamingBlockSize) {
  const RotaryEmbedding rope(4, 8, 10000.0);
  const auto x = torch::zeros({1, 1, 4, 4});
  EXPECT_CONTAINS(testing::error_message([&] { rope.apply(x, 6); }), "block_size");
}

}  // namespace
}  // namespace muonlab::models
