// The fused attention path equals the written-out reference, with and
// without cached keys, and is causal.
#include <gtest/gtest.h>

#include "muonlab/core/torch_compat.h"
#include "muonlab/models/causal_attention.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

struct Qkv {
  torch::Tensor q, k, v;
};

Qkv random_qkv(int64_t queries, int64_t keys, int64_t dim, int64_t value_dim,
               torch::Dtype dtype = torch::kFloat64) {
  torch::manual_seed(queries * 100 + keys);
  return {torch::randn({2, 3, queries, dim}, dtype), torch::randn({2, 3, keys, dim}, dtype),
          torch::randn({2, 3, keys, value_dim}, dtype)};
}

TEST(CausalAttention, FusedEqualsReferenceWithoutCache) {
  const auto a = random_qkv(7, 7, 8, 8);
  EXPECT_TENSOR_NEAR(causal_attention(a.q, a.k, a.v), causal_attention_reference(a.q, a.k, a.v),
                     1e-12);
}

TEST(CausalAttention, FusedEqualsReferenceForOneCachedQuery) {
  const auto a = random_qkv(1, 9, 8, 8);
  EXPECT_TENSOR_NEAR(causal_attention(a.q, a.k, a.v), causal_attention_reference(a.q, a.k, a.v),
                     1e-12);
}

TEST(CausalAttention, FusedEqualsReferenceForAChunkAfterACache) {
  // MLA's shape: queries and keys of d_h + d_R, values of d_h.
  const auto a = random_qkv(4, 10, 12, 8);
  EXPECT_TENSOR_NEAR(causal_attention(a.q, a.k, a.v), causal_attention_reference(a.q, a.k, a.v),
                     1e-12);
}

TEST(CausalAttention, FusedEqualsReferenceInFloat32) {
  const auto a = random_qkv(16, 16, 16, 16, torch::kFloat32);
  EXPECT_TENSOR_NEAR(causal_attention(a.q, a.k, a.v), causal_attention_reference(a.q, a.k, a.v),
                     1e-5);
}

TEST(CausalAttention, ReferenceMatchesAHandWrittenSoftmax) {
  const auto a = random_qkv(3, 3, 4, 2);
  const auto q = a.q[0][0], k = a.k[0][0], v = a.v[0][0];
  for (int64_t i = 0; i < 3; ++i) {
    const auto scores = torch::mv(k.narrow(0, 0, i + 1), q[i]) / 2.0;  // sqrt(4)
    const auto expected = torch::mv(v.narrow(0, 0, i + 1).t(), torch::softmax(scores, 0));
    EXPECT_TENSOR_NEAR(causal_attention_reference(a.q, a.k, a.v)[0][0][i], expected, 1e-12);
  }
}

TEST(CausalAttention, LaterTokensDoNotChangeEarlierOutputs) {
  auto a = random_qkv(6, 6, 8, 8);
  const auto before = causal_attention(a.q, a.k, a.v);
  a.k.narrow(2, 4, 2).normal_();
  a.v.narrow(2, 4, 2).normal_();
  const auto after = causal_attention(a.q, a.k, a.v);
  EXPECT_TENSOR_NEAR(after.narrow(2, 0, 4), before.narrow(2, 0, 4), 0);
  EXPECT_GT(testing::max_abs_diff(after.narrow(2, 4, 2), before.narrow(2, 4, 2)), 1e-3);
}

TEST(CausalAttention, MaskIsAlignedToTheLastKeys) {
  const auto mask = causal_mask(2, 4, torch::kCPU);
  const auto expected = torch::tensor({1, 1, 1, 0, 1, 1, 1, 1}, torch::kBool).view({2, 4});
  EXPECT_TRUE(torch::equal(mask, expected));
}

}  // namespace
}  // namespace muonlab::models
