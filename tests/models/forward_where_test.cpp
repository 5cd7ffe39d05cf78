// forward_where: the logits of the chosen positions are forward()'s logits
// there, in row-major order, for every model family and with capped logits.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using testing::tiny_config;

TEST(ForwardWhere, LogitsAreForwardsAtTheChosenPositions) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> models = {
      {"tiny-gpt2", {}}, {"tiny-llama", {}}, {"tiny-mla-moe", {}}, {"tiny-gpt2", {"logit_softcap=0.5"}}};
  for (const auto& [preset, overrides] : models) {
    SCOPED_TRACE(preset);
    torch::manual_seed(31);
    Transformer model(tiny_config(preset, overrides));
    model->to(torch::kFloat64);
    torch::NoGradGuard no_grad;
    const auto tokens = torch::randint(0, model->config().vocab_size, {3, 8});
    const auto where = torch::rand({3, 8}) > 0.6;
    const auto full = model(tokens).logits;
    const auto chosen = model->forward_where(tokens, where).logits;
    ASSERT_EQ(chosen.size(0), where.sum().item<int64_t>());
    int64_t row = 0;
    for (int64_t b = 0; b < 3; ++b) {
      for (int64_t t = 0; t < 8; ++t) {
        if (!where[b][t].item<bool>()) continue;
        EXPECT_TENSOR_NEAR(chosen[row], full[b][t], 1e-12);
        ++row;
      }
    }
  }
}

TEST(ForwardWhere, AMaskOfAnotherShapeIsNamed) {
  Transformer model(tiny_config("tiny-gpt2"));
  const auto tokens = torch::zeros({2, 4}, torch::kInt64);
  EXPECT_CONTAINS(testing::error_message([&] { model->forward_where(tokens, torch::ones({2, 5}, torch::kBool)); }),
                  "expected a [batch, time] bool mask of the positions to score, like the tokens [2, 4]; got [2, 5]");
}

}  // namespace
}  // namespace muonlab::models
