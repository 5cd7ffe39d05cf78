// Muon², Muon²-F, NorMuon and Group Muon in the fused CPU step
// (fused_muon_cpu.h): pass 1 with the second moment against its formula in
// float64 (momentum, state, update and norm), the same bits with one thread
// or two, NorMuon's row factors against normalize_neurons(), and whole
// steps against the float64 hand reference (Group Muon's blocks cut by hand)
// and against the general path.
#include <ATen/Parallel.h>

#include <cmath>
#include <tuple>

#include "muonlab/optimizers/fused_muon_cpu.h"
#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/neuron_norm.h"
#include "muon_matrix_problem.h"
#include "reference_newton_schulz.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::make_matrix_problem;
using testing::MatrixProblem;
using testing::reference_newton_schulz;
using testing::run_both_paths;

// Largest difference relative to the largest magnitude of `expected`.
double largest_relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual.to(torch::kFloat64) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
}

// A gradient whose rows differ in scale by 100x, the case the second moment
// is for.
torch::Tensor row_scaled_gradient(int64_t rows, int64_t cols) {
  return torch::randn({rows, cols}) * torch::logspace(0, 2, rows).unsqueeze(1);
}

SecondMomentOptions second_moment_options(SecondMomentKind kind, bool bias_correction) {
  SecondMomentOptions options;
  options.kind = kind;
  options.beta2 = 0.95;
  options.eps = 1e-8;
  options.bias_correction = bias_correction;
  return options;
}

using SecondMomentPassCase = std::tuple<std::string, bool>;  // second moment kind, bias correction

class FusedSecondMomentUpdate : public ::testing::TestWithParam<SecondMomentPassCase> {};

TEST_P(FusedSecondMomentUpdate, EqualsTheFormulaInFloat64) {
  const auto [kind_name, bias_correction] = GetParam();
  const SecondMomentKind kind = parse_second_moment_kind(kind_name);
  const auto options = second_moment_options(kind, bias_correction);
  torch::manual_seed(11);
  // Rows not a multiple of the 16-lane blocks, and tasks that end mid-row.
  const int64_t rows = 333, cols = 101, step = 3;
  const auto grad = row_scaled_gradient(rows, cols);
  auto momentum = torch::randn({rows, cols});
  SecondMomentState state = make_second_moment_state(grad, options);
  if (kind == SecondMomentKind::kFull) state.full.copy_(torch::rand({rows, cols}));
  if (kind == SecondMomentKind::kFactored) {
    state.row.copy_(torch::rand({rows}) * cols);
    state.col.copy_(torch::rand({cols}) * rows);
  }
  const auto g = grad.to(torch::kFloat64), m0 = momentum.to(torch::kFloat64);
  const double mu = 0.9, correction = bias_correction ? 1 - std::pow(0.95, step) : 1.0;
  const auto m = mu * m0 + (1 - mu) * g;
  const auto nesterov = g + mu * (m - g);
  torch::Tensor v_hat, v, r, c;
  if (kind == SecondMomentKind::kFull) {
    v = 0.95 * state.full.to(torch::kFloat64) + 0.05 * g * g;
    v_hat = v / correction;
  } else {
    r = 0.95 * state.row.to(torch::kFloat64) + 0.05 * (g * g).sum(1);
    c = 0.95 * state.col.to(torch::kFloat64) + 0.05 * (g * g).sum(0);
    v_hat = torch::outer(r, c) / c.sum() / correction;
  }
  const auto u = nesterov / (v_hat.sqrt() + 1e-8);

  auto out = torch::empty({rows, cols});
  const double squared_norm =
      fused_momentum_update(grad, momentum, out, mu, MomentumKind::kEma, /*nesterov=*/true, {&state, options, step});
  EXPECT_LT(largest_relative_error(momentum, m), 1e-6);
  EXPECT_LT(largest_relative_error(out, u), 1e-5);
  if (kind == SecondMomentKind::kFull) EXPECT_LT(largest_relative_error(state.full, v), 1e-6);
  if (kind == SecondMomentKind::kFactored) {
    EXPECT_LT(largest_relative_error(state.row, r), 1e-6);
    EXPECT_LT(largest_relative_error(state.col, c), 1e-6);
  }
  EXPECT_NEAR(squared_norm, u.pow(2).sum().item<double>(), 1e-5 * squared_norm);
}

INSTANTIATE_TEST_SUITE_P(Kinds, FusedSecondMomentUpdate,
                         ::testing::Combine(::testing::Values("full", "factored"), ::testing::Bool()));

// Column sums and norms are added block by block in a fixed order, so the
// number of threads cannot change a bit of the result.
TEST(FusedSecondMomentUpdate, SameBitsWithOneThreadOrTwo) {
  const int threads_before = at::get_num_threads();
  for (const auto kind : {SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    const auto options = second_moment_options(kind, true);
    torch::manual_seed(12);
    const auto grad = row_scaled_gradient(700, 300);  // several tasks
    const auto momentum = torch::randn({700, 300});
    struct Result {
      torch::Tensor momentum, out;
      SecondMomentState state;
      double squared_norm;
    };
    const auto run = [&](int threads) {
      at::set_num_threads(threads);
      Result r{momentum.clone(), torch::empty({700, 300}, torch::kBFloat16), make_second_moment_state(grad, options), 0};
      for (int64_t step = 1; step <= 2; ++step) {
        r.squared_norm = fused_momentum_update(grad, r.momentum, r.out, 0.95, MomentumKind::kEma, true,
                                               {&r.state, options, step});
      }
      return r;
    };
    const Result one = run(1), two = run(2);
    SCOPED_TRACE(to_string(kind));
    EXPECT_EQ(one.squared_norm, two.squared_norm);
    EXPECT_TRUE(torch::equal(one.out, two.out));
    EXPECT_TRUE(torch::equal(one.momentum, two.momentum));
    if (kind == SecondMomentKind::kFull) EXPECT_TRUE(torch::equal(one.state.full, two.state.full));
    if (kind == SecondMomentKind::kFactored) {
      EXPECT_TRUE(torch::equal(one.state.row, two.state.row));
      EXPECT_TRUE(torch::equal(one.state.col, two.state.col));
    }
  }
  at::set_num_threads(threads_before);
}

// Three steps of a Muon family member on matrix i of `problem`, by the
// formulas in float64 (docs/algorithms.md): momentum 0.9 in ema form with
// Nesterov or in sum form without; Muon²'s or Muon²-F's bias-corrected
// second moment (beta2 0.95, eps 1e-8); NS in float64; NorMuon's row
// normalization (beta2 0.95, eps 1e-8) rescaled to O's norm; lr 0.05,
// weight decay 0.1, the original scale.
struct FamilyReference {
  bool ema = true;
  SecondMomentKind second_moment = SecondMomentKind::kNone;
  bool neuron_norm = false;
  int64_t ns_steps = 5;
};

torch::Tensor family_reference_weights(const MatrixProblem& problem, size_t i, const FamilyReference& member) {
  auto W = problem.weights[i].to(torch::kFloat64);
  auto M = torch::zeros_like(W), V = torch::zeros_like(W);
  auto R = torch::zeros({W.size(0)}, W.options()), C = torch::zeros({W.size(1)}, W.options());
  auto S = torch::zeros({W.size(0)}, W.options());
  const double scale = std::sqrt(std::max(1.0, double(W.size(0)) / double(W.size(1))));
  for (int step = 1; step <= 3; ++step) {
    const auto G = problem.grads[i * 3 + step - 1].to(torch::kFloat64);
    M = member.ema ? 0.9 * M + 0.1 * G : 0.9 * M + G;
    auto U = member.ema ? G + 0.9 * (M - G) : M;
    const double correction = 1 - std::pow(0.95, step);
    if (member.second_moment == SecondMomentKind::kFull) {
      V = 0.95 * V + 0.05 * G * G;
      U = U / ((V / correction).sqrt() + 1e-8);
    } else if (member.second_moment == SecondMomentKind::kFactored) {
      R = 0.95 * R + 0.05 * (G * G).sum(1);
      C = 0.95 * C + 0.05 * (G * G).sum(0);
      U = U / ((torch::outer(R, C) / C.sum() / correction).sqrt() + 1e-8);
    }
    auto O = reference_newton_schulz(U, member.ns_steps);
    if (member.neuron_norm) {
      S = S + 0.05 * ((O * O).mean(1) - S);
      const auto N = O / (S.sqrt() + 1e-8).unsqueeze(1);
      O = N * (O.norm() / N.norm());
    }
    W = W * (1 - 0.05 * 0.1) - 0.05 * scale * O;
  }
  return W;
}

// Three steps of `options` (the member's, lr 0.05 and weight decay 0.1, NS
// in fp32) on the fused and the general path, each against the reference.
void expect_both_paths_follow(const FamilyReference& member, const MuonOptions& options) {
  const MatrixProblem problem = make_matrix_problem(13, row_scaled_gradient);
  const auto [fused, general] = run_both_paths(problem, options);
  for (size_t i = 0; i < problem.weights.size(); ++i) {
    SCOPED_TRACE("matrix " + std::to_string(i));
    EXPECT_TENSOR_NEAR(fused[i].detach().to(torch::kFloat64), family_reference_weights(problem, i, member), 2e-5);
    EXPECT_TENSOR_NEAR(fused[i].detach(), general[i].detach(), 2e-5);
  }
}

using Muon2StepCase = std::tuple<std::string, std::string>;  // second moment kind, momentum form (sum: no Nesterov)

class FusedMuon2Step : public ::testing::TestWithParam<Muon2StepCase> {};

TEST_P(FusedMuon2Step, MatchesTheFloat64ReferenceAndTheGeneralPath) {
  const auto [kind_name, form] = GetParam();
  const SecondMomentKind kind = parse_second_moment_kind(kind_name);
  const bool ema = form == "ema";
  const auto options = MuonOptions(0.05)
                           .momentum(0.9)
                           .momentum_kind(parse_momentum_kind(form))
                           .nesterov(ema)
                           .second_moment(kind)
                           .ns_steps(3)
                           .weight_decay(0.1)
                           .ns_dtype(NsDtype::kFloat32);
  expect_both_paths_follow({ema, kind, /*neuron_norm=*/false, /*ns_steps=*/3}, options);
}

INSTANTIATE_TEST_SUITE_P(Kinds, FusedMuon2Step,
                         ::testing::Combine(::testing::Values("full", "factored"), ::testing::Values("ema", "sum")));

// A first step's slot for `param` under `options`, with a random gradient,
// zero momentum and every state buffer the options ask for, as Muon makes
// them; `view` receives the parameter's matrix view.
MuonSlot first_step_slot(const torch::Tensor& param, const MuonOptions& options, MatrixView& view,
                         const TaggedParam* tag = nullptr) {
  view = check_muon_param(param, tag ? tag->name : "w", options, tag);
  MuonSlot slot;
  slot.param = param;
  slot.grad = torch::randn(param.sizes());
  slot.momentum_buffer = torch::zeros(param.sizes());
  slot.second_moment = second_moment_state_for(param, options, view);
  if (options.neuron_norm()) slot.neuron_second_moment = make_neuron_state(param, view.shape());
  slot.step = 1;
  slot.options = &options;
  slot.tag = tag;
  return slot;
}

// The fused path reads and writes the second moment in place: it is taken
// for fp32 contiguous state only, and the general path keeps the rest.
TEST(FusedMuon2Step, TakenForContiguousFp32StateOnly) {
  const auto param = torch::randn({8, 12}).set_requires_grad(true);
  for (const auto kind : {SecondMomentKind::kFull, SecondMomentKind::kFactored}) {
    const auto options = MuonOptions(0.02).ns_dtype(NsDtype::kBFloat16).second_moment(kind);
    MatrixView view;
    MuonSlot slot = first_step_slot(param, options, view);
    SCOPED_TRACE(to_string(kind));
    EXPECT_TRUE(fused_cpu_step_applies(slot, view));
    if (kind == SecondMomentKind::kFull) {
      slot.second_moment.full = torch::zeros({12, 8}).t();  // not contiguous
    } else {
      slot.second_moment.col = slot.second_moment.col.to(torch::kFloat64);
    }
    EXPECT_FALSE(fused_cpu_step_applies(slot, view));
  }
}

// NorMuon's direction from the fused factors equals normalize_neurons()'s,
// and the state advances alike, for bf16 and fp32 updates.
TEST(FusedNorMuon, RowFactorsGiveNormalizeNeuronsDirection) {
  torch::manual_seed(14);
  // Rows of very different sizes, the case NorMuon is for.
  const auto o = torch::randn({70, 45}) * torch::logspace(-1, 1, 70).unsqueeze(1);
  const auto state0 = torch::rand({70});
  NeuronNormOptions options;
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    const auto update = o.to(dtype);
    auto expected_state = state0.clone(), state = state0.clone();
    const auto expected = normalize_neurons(update.to(torch::kFloat32), expected_state, options);
    const auto factors = fused_neuron_factors(update, state, options);
    SCOPED_TRACE(c10::toString(dtype));
    EXPECT_TENSOR_NEAR(state, expected_state, 1e-6);
    EXPECT_LT(largest_relative_error(update.to(torch::kFloat32) * factors.unsqueeze(1), expected.to(torch::kFloat64)),
              1e-5);
  }
  // A zero update stays zero.
  auto state = state0.clone();
  const auto factors = fused_neuron_factors(torch::zeros({70, 45}), state, options);
  EXPECT_TRUE(torch::isfinite(factors).all().item<bool>());
}

TEST(FusedNorMuon, RowFactorsScaleEachRowOfPassTwo) {
  torch::manual_seed(15);
  auto param = torch::randn({37, 50});  // tasks end mid-row
  const auto before = param.to(torch::kFloat64);
  const auto update = torch::randn({37, 50}).to(torch::kBFloat16);
  const auto factor = torch::rand({37}) + 0.5;
  fused_decay_and_add(param, update, 0.99, -0.05, factor);
  const auto expected =
      0.99 * before - 0.05 * update.to(torch::kFloat64) * factor.to(torch::kFloat64).unsqueeze(1);
  EXPECT_TENSOR_NEAR(param.to(torch::kFloat64), expected, 1e-6);
}

class FusedNorMuonStep : public ::testing::TestWithParam<std::string> {};  // second moment kind

TEST_P(FusedNorMuonStep, MatchesTheFloat64ReferenceAndTheGeneralPath) {
  const SecondMomentKind kind = parse_second_moment_kind(GetParam());
  const int64_t steps = kind == SecondMomentKind::kNone ? 5 : 3;
  const auto options = MuonOptions(0.05)
                           .momentum(0.9)
                           .neuron_norm(true)
                           .second_moment(kind)
                           .ns_steps(steps)
                           .weight_decay(0.1)
                           .ns_dtype(NsDtype::kFloat32);
  expect_both_paths_follow({/*ema=*/true, kind, /*neuron_norm=*/true, steps}, options);
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutMuon2, FusedNorMuonStep, ::testing::Values("none", "full"));

TEST(FusedNorMuonStep, TakenForContiguousFp32StateOnly) {
  const auto param = torch::randn({8, 12}).set_requires_grad(true);
  const auto options = MuonOptions(0.02).ns_dtype(NsDtype::kBFloat16).neuron_norm(true);
  MatrixView view;
  MuonSlot slot = first_step_slot(param, options, view);
  EXPECT_TRUE(fused_cpu_step_applies(slot, view));
  slot.neuron_second_moment = slot.neuron_second_moment.to(torch::kFloat64);
  EXPECT_FALSE(fused_cpu_step_applies(slot, view));
}

// Group Muon on a GPT-2-style attention: a fused QKV [3 H d, W] (Q, K, V
// heads in rows), the output projection [W, H d] (heads in columns) and an
// MLP matrix that is never cut; H = 4 heads of d = 6, groups of 2.
constexpr int64_t kGroupHeads = 4, kGroupHeadDim = 6, kGroupWidth = kGroupHeads * kGroupHeadDim;

std::vector<TaggedParam> grouped_attention() {
  torch::manual_seed(16);
  std::vector<TaggedParam> params(3);
  params[0] = {"attn.qkv", torch::randn({3 * kGroupWidth, kGroupWidth}), ParamRole::kAttnQKV};
  params[0].heads = HeadLayout{3 * kGroupHeads, kGroupHeadDim, HeadAxis::kRows, {kGroupHeads, kGroupHeads, kGroupHeads}};
  params[1] = {"attn.o", torch::randn({kGroupWidth, kGroupWidth}), ParamRole::kAttnO};
  params[1].heads = HeadLayout{kGroupHeads, kGroupHeadDim, HeadAxis::kCols, {}};
  params[2] = {"mlp.fc", torch::randn({2 * kGroupWidth, kGroupWidth}), ParamRole::kMlp};
  return params;
}

// The blocks of two heads, written out: contiguous {0, 1}, {2, 3} or
// strided {0, 2}, {1, 3} within each projection (Q, K and V of the fused
// weight apart).
std::vector<std::vector<int64_t>> blocks_by_hand(const std::string& rule, int64_t segments) {
  std::vector<std::vector<int64_t>> blocks;
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t h = s * kGroupHeads;
    if (rule == "contiguous") blocks.insert(blocks.end(), {{h, h + 1}, {h + 2, h + 3}});
    else blocks.insert(blocks.end(), {{h, h + 2}, {h + 1, h + 3}});
  }
  return blocks;
}

// NS of each block of U (rows or columns of its heads) in float64, put back
// in place; block_scale multiplies each by its own shape's scale.
torch::Tensor orthogonalize_blocks_by_hand(const torch::Tensor& U, int64_t axis,
                                           const std::vector<std::vector<int64_t>>& blocks, bool block_scale) {
  auto O = torch::zeros_like(U);
  for (const auto& heads : blocks) {
    std::vector<int64_t> lines;
    for (int64_t h : heads) {
      for (int64_t k = 0; k < kGroupHeadDim; ++k) lines.push_back(h * kGroupHeadDim + k);
    }
    const auto index = torch::tensor(lines);
    const auto block = U.index_select(axis, index);
    auto o = reference_newton_schulz(block, 5);
    if (block_scale) o = o * std::sqrt(std::max(1.0, double(block.size(0)) / double(block.size(1))));
    O.index_copy_(axis, index, o);
  }
  return O;
}

std::vector<torch::Tensor> run_group_muon(const std::vector<TaggedParam>& initial, const MuonOptions& options,
                                          const std::vector<torch::Tensor>& grads) {
  std::vector<TaggedParam> params = initial;
  for (auto& p : params) p.tensor = p.tensor.clone().set_requires_grad(true);
  Muon muon(params, options);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < params.size(); ++i) params[i].tensor.mutable_grad() = grads[i * 3 + step].clone();
    muon.step();
  }
  std::vector<torch::Tensor> result;
  for (auto& p : params) result.push_back(p.tensor.detach());
  return result;
}

using GroupStepCase = std::tuple<std::string, bool>;  // grouping rule, block_scale

class FusedGroupMuonStep : public ::testing::TestWithParam<GroupStepCase> {};

TEST_P(FusedGroupMuonStep, MatchesBlocksCutByHandAndTheGeneralPath) {
  const auto [rule, block_scale] = GetParam();
  const auto params = grouped_attention();
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    for (int step = 0; step < 3; ++step) grads.push_back(torch::randn(p.tensor.sizes()));
  }
  const auto options = MuonOptions(0.05)
                           .momentum(0.9)
                           .weight_decay(0.1)
                           .group_size(2)
                           .grouping_rule(parse_grouping_rule(rule))
                           .block_scale(block_scale)
                           .ns_dtype(NsDtype::kFloat32);
  const auto fused = run_group_muon(params, MuonOptions(options).fused(true), grads);
  const auto general = run_group_muon(params, MuonOptions(options).fused(false), grads);

  for (size_t i = 0; i < params.size(); ++i) {
    auto W = params[i].tensor.to(torch::kFloat64);
    auto M = torch::zeros_like(W);
    const double whole_scale = std::sqrt(std::max(1.0, double(W.size(0)) / double(W.size(1))));
    for (int step = 0; step < 3; ++step) {
      const auto G = grads[i * 3 + step].to(torch::kFloat64);
      M = 0.9 * M + 0.1 * G;
      const auto U = G + 0.9 * (M - G);
      torch::Tensor O;
      double scale = whole_scale;
      if (i == 2) {
        O = reference_newton_schulz(U, 5);  // the MLP matrix stays whole
      } else {
        O = orthogonalize_blocks_by_hand(U, i == 0 ? 0 : 1, blocks_by_hand(rule, i == 0 ? 3 : 1), block_scale);
        if (block_scale) scale = 1.0;
      }
      W = W * (1 - 0.05 * 0.1) - 0.05 * scale * O;
    }
    SCOPED_TRACE(params[i].name);
    EXPECT_TENSOR_NEAR(fused[i].to(torch::kFloat64), W, 2e-5);
    EXPECT_TENSOR_NEAR(fused[i], general[i], 2e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, FusedGroupMuonStep,
                         ::testing::Combine(::testing::Values("contiguous", "strided"), ::testing::Bool()));

// Random grouping draws one permutation per grouped slot and step, in slot
// order, whichever path steps the slot: the fused and general paths cut the
// same blocks from the same seed.
TEST(FusedGroupMuonStep, RandomGroupingCutsAsTheGeneralPath) {
  const auto params = grouped_attention();
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    for (int step = 0; step < 3; ++step) grads.push_back(torch::randn(p.tensor.sizes()));
  }
  const auto options = MuonOptions(0.05).group_size(2).grouping_rule(GroupingRule::kRandom).ns_dtype(NsDtype::kFloat32);
  const auto fused = run_group_muon(params, MuonOptions(options).fused(true), grads);
  const auto general = run_group_muon(params, MuonOptions(options).fused(false), grads);
  const auto contiguous = run_group_muon(params, MuonOptions(options).grouping_rule(GroupingRule::kContiguous), grads);
  for (size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE(params[i].name);
    EXPECT_TENSOR_NEAR(fused[i], general[i], 2e-5);
  }
  // The draws did cut differently from contiguous groups.
  EXPECT_GT((fused[0] - contiguous[0]).abs().max().item<double>(), 1e-3);
}

// Gradients whose blocks' fp32 sums of squares overflow step as the same
// gradients at a sane scale do (each block is normalized on its own).
TEST(FusedGroupMuonStep, DirectionDoesNotDependOnTheGradientScale) {
  const auto params = grouped_attention();
  std::vector<torch::Tensor> grads, huge;
  for (const auto& p : params) {
    for (int step = 0; step < 3; ++step) {
      grads.push_back(torch::randn(p.tensor.sizes()));
      huge.push_back(grads.back() * std::ldexp(1.0, 83));
    }
  }
  for (const auto dtype : {NsDtype::kFloat32, NsDtype::kBFloat16})
  for (const bool fused : {true, false}) {
    const auto options = MuonOptions(0.05).weight_decay(0).group_size(2).ns_dtype(dtype).fused(fused);
    const auto plain = run_group_muon(params, options, grads);
    const auto scaled = run_group_muon(params, options, huge);
    for (size_t i = 0; i < params.size(); ++i) {
      SCOPED_TRACE(to_string(dtype) + (fused ? " fused " : " general ") + params[i].name);
      EXPECT_GT((plain[i] - params[i].tensor).abs().max().item<double>(), 0.01);
      EXPECT_TENSOR_NEAR(scaled[i], plain[i], 1e-6);
    }
  }
}

TEST(FusedGroupMuonStep, TakenForEveryGrouping) {
  const auto params = grouped_attention();
  const auto& qkv = params[0];
  for (const auto* rule : {"contiguous", "strided", "random"}) {
    const auto options = MuonOptions(0.02).ns_dtype(NsDtype::kBFloat16).group_size(2).grouping_rule(
        parse_grouping_rule(rule));
    MatrixView view;
    const MuonSlot slot = first_step_slot(qkv.tensor, options, view, &qkv);
    EXPECT_TRUE(fused_cpu_step_applies(slot, view)) << rule;
  }
}

}  // namespace
}  // namespace muonlab::optim
