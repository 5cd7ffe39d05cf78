// Muon's step against the update written out by hand in float64
// (docs/algorithms.md, Muon), for every combination of Nesterov, momentum
// form, scale rule and weight decay. The reference NS below never
// transposes: p(X X^T) X = X p(X^T X), so it checks the orientation logic too.
#include "muonlab/optimizers/muon.h"

#include <cmath>
#include <limits>
#include <tuple>

#include "reference_newton_schulz.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::reference_newton_schulz;

double reference_scale(const std::string& rule, double r, double c) {
  if (rule == "original") return std::sqrt(std::max(1.0, r / c));
  if (rule == "match_rms_adamw") return 0.2 * std::sqrt(std::max(r, c));
  if (rule == "spectral") return std::sqrt(r / c);
  return 1.0;
}

struct ReferenceMuon {
  double lr, mu, wd;
  bool nesterov, ema;
  std::string scale_rule;
  torch::Tensor buffer;

  void step(torch::Tensor& W, const torch::Tensor& G) {
    if (!buffer.defined()) buffer = torch::zeros_like(W);
    buffer = ema ? mu * buffer + (1 - mu) * G : mu * buffer + G;
    torch::Tensor U;
    if (!nesterov) {
      U = buffer;
    } else {
      U = ema ? G + mu * (buffer - G) : G + mu * buffer;
    }
    const auto O = reference_newton_schulz(U, 5);
    W = W * (1 - lr * wd);
    W = W - lr * reference_scale(scale_rule, W.size(0), W.size(1)) * O;
  }
};

using Combination = std::tuple<bool, std::string, std::string, double>;

class MuonMatchesReference : public ::testing::TestWithParam<Combination> {};

TEST_P(MuonMatchesReference, ThreeSteps) {
  const auto [nesterov, momentum_form, scale_rule, weight_decay] = GetParam();
  torch::manual_seed(1);
  // A wide, a tall and a square matrix, in float64 with fp64 NS.
  std::vector<torch::Tensor> weights = {torch::randn({12, 20}, torch::kFloat64),
                                        torch::randn({20, 12}, torch::kFloat64),
                                        torch::randn({16, 16}, torch::kFloat64)};
  std::vector<torch::Tensor> params;
  for (const auto& w : weights) params.push_back(w.clone().set_requires_grad(true));

  const auto options = MuonOptions(0.05)
                           .momentum(0.9)
                           .nesterov(nesterov)
                           .momentum_kind(parse_momentum_kind(momentum_form))
                           .scale_rule(parse_scale_rule(scale_rule))
                           .weight_decay(weight_decay)
                           .ns_dtype(NsDtype::kFloat64);
  Muon muon(params, options);
  std::vector<ReferenceMuon> reference(
      weights.size(),
      ReferenceMuon{0.05, 0.9, weight_decay, nesterov, momentum_form == "ema", scale_rule, {}});

  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      const auto grad = torch::randn_like(weights[i]);
      params[i].mutable_grad() = grad.clone();
      reference[i].step(weights[i], grad);
    }
    muon.step();
  }
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TENSOR_NEAR(params[i].detach(), weights[i], 1e-10);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllOptions, MuonMatchesReference,
    ::testing::Combine(::testing::Bool(), ::testing::Values("sum", "ema"),
                       ::testing::Values("original", "match_rms_adamw", "spectral", "none"),
                       ::testing::Values(0.0, 0.1)));

std::vector<torch::Tensor> mixed_shapes(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> params;
  for (const auto& shape : std::vector<std::vector<int64_t>>{
           {8, 24}, {24, 8}, {8, 24}, {16, 16}, {16, 16}, {10, 6}}) {
    auto p = torch::randn(shape, torch::kFloat64).set_requires_grad(true);
    p.mutable_grad() = torch::randn(shape, torch::kFloat64);
    params.push_back(p);
  }
  return params;
}

TEST(Muon, BatchedEqualsPerParameterLoop) {
  auto batched_params = mixed_shapes(2);
  auto looped_params = mixed_shapes(2);
  const auto options = MuonOptions(0.02).ns_dtype(NsDtype::kFloat64);
  Muon batched(batched_params, MuonOptions(options).ns_batching(NsBatching::kAlways));
  Muon looped(looped_params, MuonOptions(options).ns_batching(NsBatching::kNever));
  for (int step = 0; step < 2; ++step) {
    batched.step();
    looped.step();
  }
  for (size_t i = 0; i < batched_params.size(); ++i) {
    EXPECT_TENSOR_NEAR(batched_params[i].detach(), looped_params[i].detach(), 1e-12);
  }
}

// ns_method = gram changes how NS is computed, not what: in float64 the
// steps equal the standard form's, batched or looped; and in fp32 the fused
// CPU step (which runs NS in the matrix's own orientation) follows the
// general path. The shapes include wide and tall ones that take the Gram
// form and square ones that do not.
TEST(Muon, GramNsMethodTakesTheSameSteps) {
  auto standard_params = mixed_shapes(5);
  auto gram_params = mixed_shapes(5);
  auto gram_batched_params = mixed_shapes(5);
  const auto options = MuonOptions(0.02).ns_dtype(NsDtype::kFloat64);
  const auto gram = MuonOptions(options).ns_method(NsMethod::kGram);
  ASSERT_TRUE(uses_gram_form(8, 24, gram.newton_schulz_config()));
  Muon standard(standard_params, options);
  Muon gram_looped(gram_params, MuonOptions(gram).ns_batching(NsBatching::kNever));
  Muon gram_batched(gram_batched_params, MuonOptions(gram).ns_batching(NsBatching::kAlways));
  for (int step = 0; step < 3; ++step) {
    standard.step();
    gram_looped.step();
    gram_batched.step();
  }
  for (size_t i = 0; i < standard_params.size(); ++i) {
    EXPECT_TENSOR_NEAR(gram_params[i].detach(), standard_params[i].detach(), 1e-12);
    EXPECT_TENSOR_NEAR(gram_batched_params[i].detach(), standard_params[i].detach(), 1e-12);
  }

  const auto fp32_copies = [](const std::vector<torch::Tensor>& params) {
    std::vector<torch::Tensor> copies;
    for (const auto& p : params) {
      auto copy = p.detach().to(torch::kFloat32).set_requires_grad(true);
      copy.mutable_grad() = p.grad().to(torch::kFloat32);
      copies.push_back(copy);
    }
    return copies;
  };
  const auto start = mixed_shapes(6);
  auto fused_params = fp32_copies(start);
  auto general_params = fp32_copies(start);
  const auto fp32_gram = MuonOptions(gram).ns_dtype(NsDtype::kFloat32);
  Muon fused(fused_params, MuonOptions(fp32_gram).fused(true));
  Muon general(general_params, MuonOptions(fp32_gram).fused(false));
  fused.step();
  general.step();
  for (size_t i = 0; i < start.size(); ++i) {
    EXPECT_TENSOR_NEAR(fused_params[i].detach(), general_params[i].detach(), 1e-5);
  }
}

TEST(Muon, EachParamGroupUsesItsOwnOptions) {
  torch::manual_seed(3);
  auto fast = torch::randn({8, 8}, torch::kFloat64).set_requires_grad(true);
  auto slow = fast.detach().clone().set_requires_grad(true);
  const auto grad = torch::randn({8, 8}, torch::kFloat64);
  fast.mutable_grad() = grad.clone();
  slow.mutable_grad() = grad.clone();
  const auto before = fast.detach().clone();

  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{fast},
                      std::make_unique<MuonOptions>(
                          MuonOptions(0.1).weight_decay(0).ns_dtype(NsDtype::kFloat64)));
  groups.emplace_back(std::vector<torch::Tensor>{slow});  // takes the defaults
  Muon muon(groups, MuonOptions(0.01).weight_decay(0).ns_dtype(NsDtype::kFloat64));
  muon.step();
  // Same gradient, same direction: the steps differ by the lr ratio alone.
  EXPECT_TENSOR_NEAR((fast.detach() - before) / 0.1, (slow.detach() - before) / 0.01, 1e-12);
  EXPECT_GT((fast.detach() - before).abs().max().item<double>(), 0.0);

  // So does a group added later. (Recent LibTorch replaces the options of
  // a group of any optimizer not its own with the defaults.)
  auto later = torch::randn({4, 4}, torch::kFloat64).set_requires_grad(true);
  muon.add_param_group(torch::optim::OptimizerParamGroup(
      {later}, std::make_unique<MuonOptions>(MuonOptions(0.5).momentum(0.8))));
  const auto& added = static_cast<const MuonOptions&>(muon.param_groups()[2].options());
  EXPECT_EQ(added.lr(), 0.5);
  EXPECT_EQ(added.momentum(), 0.8);
  EXPECT_EQ(static_cast<const MuonOptions&>(muon.param_groups()[0].options()).lr(), 0.1);
}

TEST(Muon, RejectsNonMatrixParameterByName) {
  torch::OrderedDict<std::string, torch::Tensor> named;
  named.insert("blocks.0.attn.weight", torch::randn({4, 4}));
  named.insert("blocks.0.ln.weight", torch::randn({4}));
  const auto message = error_message([&] { Muon muon(named); });
  EXPECT_NE(message.find("'blocks.0.ln.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("Muon takes matrices"), std::string::npos) << message;
}

TEST(Muon, RejectsParametersMarkedForAdamWByName) {
  std::vector<TaggedParam> tagged = {{"wte.weight", torch::randn({50, 8}), ParamRole::kEmbedding},
                                     {"h.0.fc.weight", torch::randn({8, 8}), ParamRole::kMlp}};
  auto message = error_message([&] { Muon muon(tagged); });
  EXPECT_NE(message.find("'wte.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("embedding"), std::string::npos) << message;

  tagged = {{"h.0.fc.weight", torch::randn({8, 8}), ParamRole::kMlp, /*exclude_from_muon=*/true}};
  message = error_message([&] { Muon muon(tagged); });
  EXPECT_NE(message.find("exclude_from_muon"), std::string::npos) << message;
}

TEST(Muon, RejectsInvalidOptionsByField) {
  const std::vector<torch::Tensor> params{torch::randn({4, 4})};
  EXPECT_NE(error_message([&] { Muon m(params, MuonOptions().momentum(1.5)); }).find("momentum = 1.5"),
            std::string::npos);
  EXPECT_NE(error_message([&] { Muon m(params, MuonOptions(-1.0)); }).find("lr = -1"),
            std::string::npos);
  EXPECT_NE(error_message([&] { parse_scale_rule("rms"); }).find("'rms'"), std::string::npos);
  // Infinite settings would step every weight to inf or NaN without a word.
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_CONTAINS(error_message([&] { Muon m(params, MuonOptions(inf)); }), "Muon lr = inf: expected a finite number >= 0");
  EXPECT_CONTAINS(error_message([&] { Muon m(params, MuonOptions(std::nan(""))); }), "Muon lr = nan");
  EXPECT_CONTAINS(error_message([&] { Muon m(params, MuonOptions().weight_decay(inf)); }),
                  "Muon weight_decay = inf: expected a finite number >= 0");
  EXPECT_CONTAINS(error_message([&] { Muon m(params, MuonOptions().eps(inf)); }), "Muon eps = inf");
  EXPECT_NO_THROW(Muon(params, MuonOptions(1e300))) << "large but finite: taken";
}

TEST(Muon, DefaultsFollowTorchOptimMuon) {
  const MuonOptions defaults;
  EXPECT_DOUBLE_EQ(defaults.lr(), 1e-3);
  EXPECT_DOUBLE_EQ(defaults.momentum(), 0.95);
  EXPECT_DOUBLE_EQ(defaults.weight_decay(), 0.1);
  EXPECT_TRUE(defaults.nesterov());
  EXPECT_EQ(defaults.ns_steps(), 5);
  EXPECT_EQ(defaults.ns_coefficients().name, "jordan");
  EXPECT_EQ(defaults.scale_rule(), ScaleRule::kOriginal);
  EXPECT_EQ(defaults.ns_batching(), NsBatching::kAuto);
  EXPECT_EQ(defaults.ns_method(), NsMethod::kStandard);
}

TEST(Muon, RecordsTheScaledUpdateOfTheLastStep) {
  torch::manual_seed(4);
  auto p = torch::randn({6, 10}, torch::kFloat64).set_requires_grad(true);
  p.mutable_grad() = torch::randn({6, 10}, torch::kFloat64);
  const auto before = p.detach().clone();
  Muon muon(std::vector<torch::Tensor>{p},
            MuonOptions(0.1).weight_decay(0.5).ns_dtype(NsDtype::kFloat64));
  muon.record_updates(true);
  muon.step();
  // W' = W (1 - lr wd) - lr * update  =>  update = (W (1 - lr wd) - W') / lr.
  const auto expected = (before * (1 - 0.1 * 0.5) - p.detach()) / 0.1;
  EXPECT_TENSOR_NEAR(muon.last_update(p), expected, 1e-12);
}

TEST(Muon, SkipsParametersWithoutGradient) {
  auto p = torch::randn({4, 6}).set_requires_grad(true);
  const auto before = p.detach().clone();
  Muon muon(std::vector<torch::Tensor>{p});
  muon.step();
  EXPECT_TRUE(torch::equal(p.detach(), before));
  EXPECT_EQ(muon.state().size(), 0u);
}

}  // namespace
}  // namespace muonlab::optim
