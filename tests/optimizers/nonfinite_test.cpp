// Non-finite gradients never reach the weights: the default policy names
// the parameter and the step, skip_step leaves everything untouched.
#include <cmath>
#include <limits>

#include "muonlab/optimizers/hybrid.h"
#include "test_util.h"
#include "tiny_model.h"

namespace muonlab::optim {
namespace {

using testing::error_message;

torch::OrderedDict<std::string, torch::Tensor> two_matrices() {
  torch::manual_seed(1);
  torch::OrderedDict<std::string, torch::Tensor> named;
  for (const auto* name : {"h.0.attn.weight", "h.0.mlp.weight"}) {
    auto p = torch::randn({6, 6}).set_requires_grad(true);
    p.mutable_grad() = torch::randn({6, 6});
    named.insert(name, p);
  }
  return named;
}

TEST(NonFinite, ErrorNamesParameterAndStepAndChangesNothing) {
  auto named = two_matrices();
  Muon muon(named, MuonOptions(0.02));
  muon.step();
  const auto before = named["h.0.attn.weight"].detach().clone();
  named["h.0.mlp.weight"].mutable_grad()[2][3] = std::numeric_limits<float>::quiet_NaN();

  try {
    muon.step();
    FAIL() << "a NaN gradient was accepted";
  } catch (const NonFiniteGradientError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'h.0.mlp.weight'"), std::string::npos) << message;
    EXPECT_NE(message.find("step 2"), std::string::npos) << message;
  }
  EXPECT_TRUE(torch::equal(named["h.0.attn.weight"].detach(), before));
  EXPECT_EQ(muon.step_count(), 1);
}

TEST(NonFinite, SkipStepLeavesWeightsAndStateUntouched) {
  auto named = two_matrices();
  Muon muon(named, MuonOptions(0.02));
  muon.set_nonfinite_policy(NonFinitePolicy::kSkipStep);
  named["h.0.attn.weight"].mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
  const auto before = named["h.0.mlp.weight"].detach().clone();

  muon.step();
  EXPECT_TRUE(torch::equal(named["h.0.mlp.weight"].detach(), before));
  EXPECT_EQ(muon.state().size(), 0u) << "state was created by a skipped step";
  EXPECT_EQ(muon.skipped_steps(), 1);
  EXPECT_EQ(muon.step_count(), 0);

  named["h.0.attn.weight"].mutable_grad()[0][0] = 0.5;
  muon.step();
  EXPECT_FALSE(torch::equal(named["h.0.mlp.weight"].detach(), before));
  EXPECT_EQ(muon.step_count(), 1);
}

TEST(NonFinite, HybridChecksBothOptimizersBeforeEitherSteps) {
  auto model = testing::make_tiny_model(1);
  model->loss(testing::tiny_batch(2)).backward();
  MuonWithAuxAdamW hybrid(model->named_parameters(), MuonOptions(0.02), AdamWOptions(1e-2));
  // The NaN sits in an AdamW parameter; the Muon matrices must not move either.
  model->ln_f->weight.mutable_grad()[0] = std::numeric_limits<double>::quiet_NaN();
  const auto matrix_before = model->h0->c_fc->weight.detach().clone();

  const auto message = error_message([&] { hybrid.step(); });
  EXPECT_NE(message.find("'ln_f.weight'"), std::string::npos) << message;
  EXPECT_TRUE(torch::equal(model->h0->c_fc->weight.detach(), matrix_before));

  hybrid.set_nonfinite_policy(NonFinitePolicy::kSkipStep);
  hybrid.step();
  EXPECT_EQ(hybrid.skipped_steps(), 1);
  EXPECT_TRUE(torch::equal(model->h0->c_fc->weight.detach(), matrix_before));
}

TEST(NonFinite, PolicyNamesParse) {
  EXPECT_EQ(parse_nonfinite_policy("skip_step"), NonFinitePolicy::kSkipStep);
  EXPECT_NE(error_message([] { parse_nonfinite_policy("ignore"); }).find("'ignore'"),
            std::string::npos);
}

}  // namespace
}  // namespace muonlab::optim
