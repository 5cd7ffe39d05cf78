// The models and the optimizers together: the model's own tags route its
// parameters, and a few hybrid Muon + AdamW steps fit a fixed batch.
#include <gtest/gtest.h>

#include "models/model_test_util.h"
#include "muonlab/models/transformer.h"
#include "muonlab/optimizers/hybrid.h"

namespace muonlab::models {
namespace {

using testing::tiny_config;

TEST(ModelTraining, HybridOptimizerOnTaggedParametersFitsABatch) {
  for (const auto* preset : {"tiny-gpt2", "tiny-llama", "tiny-mla-moe"}) {
    SCOPED_TRACE(preset);
    torch::manual_seed(61);
    Transformer model(tiny_config(preset));
    optim::MuonWithAuxAdamW optimizer(model->tagged_parameters(), optim::MuonOptions(0.02),
                                      optim::AdamWOptions(3e-3).weight_decay(0.0));
    const auto tokens = torch::randint(0, 64, {4, 16});
    const auto targets = torch::randint(0, 64, {4, 16});
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
      optimizer.zero_grad();
      const auto loss = training_loss(model(tokens), targets);
      loss.backward();
      optimizer.step();
      (step == 0 ? first : last) = loss.item<double>();
    }
    // Random targets: log(64) = 4.16 at the start; memorizing 64 tokens goes far below.
    EXPECT_NEAR(first, std::log(64.0), 0.3);
    EXPECT_LT(last, 0.6 * first);
  }
}

TEST(ModelTraining, TagsRouteHiddenMatricesToMuonAndTheRestToAdamW) {
  for (const auto* bias : {"bias=false", "bias=true"}) {
    SCOPED_TRACE(bias);
    torch::manual_seed(62);
    Transformer model(tiny_config("tiny-mla-moe", {bias}));
    for (const auto& p : model->tagged_parameters()) {
      // A weight of two or more dimensions (the routed experts' are stacks
      // [E, out, in]; their biases [E, out] are not weights).
      const bool weight = p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0;
      const bool hidden_matrix = weight && p.tensor.dim() >= 2 && p.role != optim::ParamRole::kEmbedding &&
                                 p.role != optim::ParamRole::kHead && p.role != optim::ParamRole::kRouter;
      EXPECT_EQ(optim::route(p), hidden_matrix ? optim::OptimizerChoice::kMuon : optim::OptimizerChoice::kAdamW)
          << p.name;
    }
  }
}

}  // namespace
}  // namespace muonlab::models
