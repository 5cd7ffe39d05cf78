// Incremental decoding with the KV cache gives the logits of a full forward
// pass, for MHA, GQA and MLA (whose cache holds only the latent and the
// rotary key, and whose cached path absorbs W_uk and W_uv).
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "muonlab/models/kv_cache.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using testing::tiny_config;

// Logits for `tokens` fed in chunks of the given sizes through one cache.
torch::Tensor decode_in_chunks(Transformer& model, const torch::Tensor& tokens,
                               const std::vector<int64_t>& chunks) {
  KvCache cache(model->config(), tokens.size(0), tokens.size(1),
                torch::dtype(torch::kFloat64));
  std::vector<torch::Tensor> logits;
  int64_t start = 0;
  for (const auto size : chunks) {
    logits.push_back(model(tokens.narrow(1, start, size), &cache).logits);
    start += size;
  }
  EXPECT_EQ(cache.position(), tokens.size(1));
  return torch::cat(logits, 1);
}

void expect_cached_decoding_matches_full_pass(const ModelConfig& config) {
  torch::manual_seed(21);
  Transformer model(config);
  model->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(0, config.vocab_size, {2, 9});
  const auto full = model(tokens).logits;
  // Prefill 4 tokens, then one at a time, then a chunk of 3 after the cache.
  const auto incremental = decode_in_chunks(model, tokens, {4, 1, 1, 3});
  EXPECT_TENSOR_NEAR(incremental, full, 1e-10);
  const auto token_by_token = decode_in_chunks(model, tokens, std::vector<int64_t>(9, 1));
  EXPECT_TENSOR_NEAR(token_by_token, full, 1e-10);
}

TEST(KvCache, MultiHeadAttentionWithLearnedPositions) {
  expect_cached_decoding_matches_full_pass(tiny_config("tiny-gpt2"));
}

TEST(KvCache, ReluSquaredMlpAndCappedLogits) {
  expect_cached_decoding_matches_full_pass(tiny_config("tiny-gpt2", {"mlp=relu2", "logit_softcap=2"}));
}

TEST(KvCache, GroupedQueryAttentionWithRopeAndQkNorm) {
  expect_cached_decoding_matches_full_pass(
      tiny_config("tiny-llama", {"n_kv_head=2", "qk_norm=true"}));
}

TEST(KvCache, LatentAttentionWithQueryCompression) {
  expect_cached_decoding_matches_full_pass(tiny_config("tiny-mla-moe"));
}

TEST(KvCache, LatentAttentionUncompressedWithBiasesAndDenseMlp) {
  // Biases test the absorbed path: b_uk drops out of the softmax, b_uv is added back.
  expect_cached_decoding_matches_full_pass(
      tiny_config("tiny-mla-moe", {"mla.q_latent=0", "bias=true", "feed_forward=dense"}));
}

TEST(KvCache, LatentCacheHoldsOnlyTheLatentAndTheRotaryKey) {
  const auto config = tiny_config("tiny-mla-moe");
  KvCache cache(config, 3, 10, torch::dtype(torch::kFloat32));
  const int64_t per_token = config.mla.kv_latent + config.mla.rope_dim;
  EXPECT_EQ(cache.allocated_bytes(), 3 * 10 * per_token * config.n_layer * 4);
  EXPECT_EQ(kv_cache_numbers_per_token(config), per_token * config.n_layer);
  EXPECT_FALSE(cache.layer(0).keys.defined());
  EXPECT_FALSE(cache.layer(0).values.defined());
}

TEST(KvCache, MhaCacheHoldsKeysAndValuesOfTheKvHeads) {
  const auto config = tiny_config("tiny-llama", {"n_kv_head=1"});
  KvCache cache(config, 1, 8, torch::dtype(torch::kFloat32));
  EXPECT_EQ(kv_cache_numbers_per_token(config), 2 * 1 * config.head_dim() * config.n_layer);
  EXPECT_EQ(cache.allocated_bytes(), 8 * kv_cache_numbers_per_token(config) * 4);
}

TEST(KvCache, OverflowAndOversizeFailWithAMessage) {
  const auto config = tiny_config("tiny-gpt2");
  EXPECT_CONTAINS(testing::error_message([&] {
                    KvCache cache(config, 1, config.block_size + 1, torch::dtype(torch::kFloat32));
                  }),
                  "block_size");
  torch::manual_seed(0);
  Transformer model(config);
  KvCache cache(config, 1, 4, torch::dtype(torch::kFloat32));
  torch::NoGradGuard no_grad;
  EXPECT_CONTAINS(testing::error_message([&] { model(torch::zeros({1, 5}, torch::kInt64), &cache); }),
                  "KV cache");
}

}  // namespace
}  // namespace muonlab::models
