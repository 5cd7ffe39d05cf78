// Generation: the cache changes nothing, sampling cuts are exact, and seeds
// reproduce.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/model_test_util.h"
#include "muonlab/models/generate.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using testing::tiny_config;

Transformer tiny_model(const std::string& preset) {
  torch::manual_seed(41);
  Transformer model(tiny_config(preset));
  model->to(torch::kFloat64);
  return model;
}

TEST(Generate, CachedAndUncachedDecodingAgreeForEveryAttention) {
  for (const auto* preset : {"tiny-gpt2", "tiny-llama", "tiny-mla-moe"}) {
    SCOPED_TRACE(preset);
    auto model = tiny_model(preset);
    SamplingOptions options;
    options.max_new_tokens = 12;
    options.temperature = 0.8;
    options.top_k = 20;
    options.seed = 5;
    const auto cached = generate(model, {1, 2, 3}, options);
    options.use_cache = false;
    const auto recomputed = generate(model, {1, 2, 3}, options);
    EXPECT_EQ(cached, recomputed);
    EXPECT_EQ(cached.size(), 15u);
    EXPECT_EQ(std::vector<int64_t>(cached.begin(), cached.begin() + 3),
              (std::vector<int64_t>{1, 2, 3}));
  }
}

TEST(Generate, GreedyPicksTheArgmaxOfAFullForwardPass) {
  auto model = tiny_model("tiny-llama");
  SamplingOptions options;
  options.temperature = 0;
  options.max_new_tokens = 6;
  const auto tokens = generate(model, {7}, options);
  torch::NoGradGuard no_grad;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const auto prefix = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.begin() + i))
                            .unsqueeze(0);
    EXPECT_EQ(model(prefix).logits[0][-1].argmax().item<int64_t>(), tokens[i]) << "step " << i;
  }
}

TEST(Generate, SameSeedSameTokensOtherSeedOtherTokens) {
  auto model = tiny_model("tiny-gpt2");
  SamplingOptions options;
  options.max_new_tokens = 20;
  options.temperature = 2.0;  // flat enough that seeds diverge
  options.seed = 1;
  const auto a = generate(model, {0}, options);
  EXPECT_EQ(generate(model, {0}, options), a);
  options.seed = 2;
  EXPECT_NE(generate(model, {0}, options), a);
}

// Past block_size (and from a prompt longer than it) each greedy token is
// the argmax of a forward pass over the last block_size tokens, cached or
// not: nanoGPT's crop, instead of stopping at block_size.
TEST(Generate, SlidesTheContextWindowPastBlockSize) {
  auto model = tiny_model("tiny-gpt2");
  const auto block_size = static_cast<size_t>(model->config().block_size);
  SamplingOptions options;
  options.temperature = 0;
  options.max_new_tokens = static_cast<int64_t>(block_size) + 5;
  for (const std::vector<int64_t>& prompt : {std::vector<int64_t>{1, 2}, std::vector<int64_t>(block_size + 3, 7)}) {
    const auto tokens = generate(model, prompt, options);
    ASSERT_EQ(tokens.size(), prompt.size() + options.max_new_tokens);
    torch::NoGradGuard no_grad;
    for (size_t i = prompt.size(); i < tokens.size(); ++i) {
      const size_t start = i > block_size ? i - block_size : 0;
      const auto context = torch::tensor(std::vector<int64_t>(tokens.begin() + start, tokens.begin() + i)).unsqueeze(0);
      ASSERT_EQ(model(context).logits[0][-1].argmax().item<int64_t>(), tokens[i]) << "token " << i;
    }
    options.use_cache = false;
    EXPECT_EQ(generate(model, prompt, options), tokens);
    options.use_cache = true;
  }
}

// With a stop token the output is the unstopped sample (same seed) cut just
// after that token's first sampled occurrence; one in the prompt does not stop.
TEST(Generate, StopsAfterTheFirstSampledStopToken) {
  auto model = tiny_model("tiny-gpt2");
  SamplingOptions options;
  options.max_new_tokens = 40;
  options.temperature = 2.0;  // flat: many different tokens
  options.seed = 3;
  const std::vector<int64_t> prompt{5};
  const auto full = generate(model, prompt, options);
  const int64_t stop = full[11];
  const auto first = std::find(full.begin() + 1, full.end(), stop);
  const std::vector<int64_t> expected(full.begin(), first + 1);
  ASSERT_LT(expected.size(), full.size());
  options.stop_token = stop;
  EXPECT_EQ(generate(model, prompt, options), expected);
  options.use_cache = false;
  EXPECT_EQ(generate(model, prompt, options), expected);

  const auto from_stop = generate(model, {stop}, options);
  EXPECT_GT(from_stop.size(), 2u) << "the stop token in the prompt ended the sample";
  int64_t never_sampled = 0;
  while (std::find(full.begin(), full.end(), never_sampled) != full.end()) ++never_sampled;
  ASSERT_LT(never_sampled, model->config().vocab_size);
  options.stop_token = never_sampled;
  EXPECT_EQ(generate(model, prompt, options), full);
}

// The callback sees each new token as it is drawn, in order, and only the
// new ones: the stop token included, the prompt not.
TEST(Generate, CallbackSeesEachNewTokenAsItIsDrawn) {
  auto model = tiny_model("tiny-gpt2");
  SamplingOptions options;
  options.max_new_tokens = 25;
  options.temperature = 2.0;
  options.seed = 3;
  const std::vector<int64_t> prompt{5, 6};
  std::vector<int64_t> seen;
  std::vector<size_t> seen_when;  // how many tokens the callback had seen at each call
  const auto tokens = generate(model, prompt, options, [&](int64_t id) {
    seen_when.push_back(seen.size());
    seen.push_back(id);
  });
  EXPECT_EQ(tokens, generate(model, prompt, options)) << "the callback changed the sample";
  EXPECT_EQ(seen, std::vector<int64_t>(tokens.begin() + 2, tokens.end()));
  options.stop_token = tokens[9];
  seen.clear();
  const auto stopped = generate(model, prompt, options, [&](int64_t id) { seen.push_back(id); });
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), tokens[9]);
  EXPECT_EQ(seen, std::vector<int64_t>(stopped.begin() + 2, stopped.end()));
}

TEST(Generate, BadPromptsAndOptionsFailWithAMessage) {
  auto model = tiny_model("tiny-gpt2");
  SamplingOptions options;
  EXPECT_CONTAINS(testing::error_message([&] { generate(model, {}, options); }), "prompt is empty");
  EXPECT_CONTAINS(testing::error_message([&] { generate(model, {64}, options); }),
                  "outside the vocabulary [0, 64)");
  options.stop_token = 64;
  EXPECT_CONTAINS(testing::error_message([&] { generate(model, {1}, options); }),
                  "stop token 64 is outside the vocabulary [0, 64)");
  options.stop_token = -1;
  EXPECT_CONTAINS(testing::error_message([&] { generate(model, {1}, options); }), "stop_token = -1");
  options.stop_token.reset();
  options.top_p = 0;
  EXPECT_CONTAINS(testing::error_message([&] { generate(model, {1}, options); }), "top_p = 0");
  options.top_p = 1;
  for (const double temperature : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    options.temperature = temperature;
    EXPECT_CONTAINS(testing::error_message([&] { generate(model, {1}, options); }),
                    fmt::format("temperature = {}: expected 0 (greedy) or a finite positive number", temperature));
    EXPECT_CONTAINS(testing::error_message([&] { check_generation(model->config(), {1}, options); }), "temperature");
  }
}

TEST(Sampling, TopKKeepsTheKLargestRenormalized) {
  const auto logits = torch::log(torch::tensor({0.1, 0.4, 0.2, 0.3}, torch::kFloat64));
  SamplingOptions options;
  options.top_k = 2;
  EXPECT_TENSOR_NEAR(sampling_distribution(logits, options),
                     torch::tensor({0.0, 4.0 / 7, 0.0, 3.0 / 7}, torch::kFloat64), 1e-15);
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingTheMass) {
  const auto logits = torch::log(torch::tensor({0.1, 0.4, 0.2, 0.3}, torch::kFloat64));
  SamplingOptions options;
  options.top_p = 0.65;  // 0.4 + 0.3 = 0.7 is the first mass >= 0.65
  EXPECT_TENSOR_NEAR(sampling_distribution(logits, options),
                     torch::tensor({0.0, 4.0 / 7, 0.0, 3.0 / 7}, torch::kFloat64), 1e-15);
  options.top_p = 0.01;  // always keeps the most likely token
  EXPECT_TENSOR_NEAR(sampling_distribution(logits, options),
                     torch::tensor({0.0, 1.0, 0.0, 0.0}, torch::kFloat64), 1e-15);
}

TEST(Sampling, TemperatureSharpensAndFlattens) {
  const auto logits = torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64);
  SamplingOptions options;
  options.temperature = 0.5;
  EXPECT_TENSOR_NEAR(sampling_distribution(logits, options), torch::softmax(logits * 2, 0), 1e-15);
  options.temperature = 4.0;
  EXPECT_TENSOR_NEAR(sampling_distribution(logits, options), torch::softmax(logits / 4, 0), 1e-15);
}

TEST(Sampling, DrawFrequenciesFollowTheDistribution) {
  const auto logits = torch::log(torch::tensor({0.5, 0.3, 0.2}, torch::kFloat64));
  SamplingOptions options;
  std::mt19937_64 rng(3);
  std::vector<int64_t> counts(3, 0);
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) ++counts[sample_next_token(logits, options, rng)];
  // Binomial standard deviation at n = 20000 is at most 0.0036; allow 5 sigma.
  EXPECT_NEAR(counts[0] / double(draws), 0.5, 0.018);
  EXPECT_NEAR(counts[1] / double(draws), 0.3, 0.018);
  EXPECT_NEAR(counts[2] / double(draws), 0.2, 0.018);
}

}  // namespace
}  // namespace muonlab::models
