// The `muonlab align` instrument: spectra and alignment of Muon's input U and
// Muon²'s P = U / (sqrt(V_hat) + eps), against constructed cases whose
// answer is known.
#include "muonlab/analysis/spectrum_alignment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "muonlab/analysis/alignment.h"
#include "muonlab/analysis/alignment_plot.h"
#include "muonlab/analysis/muon_inputs.h"
#include "test_util.h"

namespace muonlab::analysis {
namespace {

using testing::matrix_with_singular_values;
using testing::random_matrix;

optim::NewtonSchulzConfig jordan(int64_t steps = 5) {
  optim::NewtonSchulzConfig config;
  config.steps = steps;
  config.dtype = optim::NsDtype::kFloat64;
  return config;
}

double relative_error(double value, double expected) { return std::abs(value - expected) / std::abs(expected); }

// ---- spectrum_stats -----------------------------------------------------------

TEST(SpectrumStats, ConditionNumberIsTheOneBuiltIn) {
  const auto s = torch::logspace(0, -3, 40, 10.0, torch::kFloat64);  // condition 1e3
  const SpectrumStats stats = spectrum_stats(matrix_with_singular_values(40, 60, s, 1));
  EXPECT_EQ(stats.rank, 40);
  EXPECT_LT(relative_error(stats.condition, 1e3), 1e-9) << stats.condition;
  EXPECT_LT(relative_error(stats.s_max, 1.0), 1e-12);
  EXPECT_LT(relative_error(stats.s_min, 1e-3), 1e-9);
  // The percentiles interpolate linearly between neighbouring singular
  // values, as torch::quantile does: its route is the reference. (Log-spaced
  // values put them 0.8 of the way apart in log10, ratio about 10^2.4.)
  const double expected = (torch::quantile(s, 0.9) / torch::quantile(s, 0.1)).item<double>();
  EXPECT_LT(relative_error(stats.spread_p90_p10, expected), 1e-9) << stats.spread_p90_p10;
  EXPECT_LT(relative_error(stats.spread_p90_p10, std::pow(10.0, 2.4)), 1e-3);
}

TEST(SpectrumStats, ZeroSingularValuesAreLeftOut) {
  // Rank 3 in a 6 x 8 matrix: the condition of what msign keeps, not infinity.
  const auto s = torch::tensor({4.0, 2.0, 1.0, 0.0, 0.0, 0.0}, torch::kFloat64);
  const SpectrumStats stats = spectrum_stats(matrix_with_singular_values(6, 8, s, 2));
  EXPECT_EQ(stats.rank, 3);
  EXPECT_LT(relative_error(stats.condition, 4.0), 1e-9);
}

TEST(SpectrumStats, ZeroMatrixHasNoCondition) {
  const SpectrumStats stats = spectrum_stats(torch::zeros({3, 5}));
  EXPECT_EQ(stats.rank, 0);
  EXPECT_TRUE(std::isnan(stats.condition));
}

TEST(SpectrumStats, RejectsNonMatrices) {
  EXPECT_CONTAINS(testing::error_message([] { spectrum_stats(torch::zeros({2, 3, 4})); }), "[2, 3, 4]");
}

// ---- spectrum_alignment -------------------------------------------------------

TEST(SpectrumAlignment, CurvesAreTheAlignmentOfEachInput) {
  const auto U = random_matrix(16, 24, 3);
  const auto P = testing::ill_conditioned(16, 24, 1e3, 4);
  const AlignmentRow row = spectrum_alignment("w", U, P, jordan(4));
  EXPECT_EQ(row.shape, (std::vector<int64_t>{16, 24}));
  const auto muon = ns_alignment_curve(U, jordan(4));
  const auto muon2 = ns_alignment_curve(P, jordan(4));
  ASSERT_EQ(row.muon.size(), 5u);
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_DOUBLE_EQ(row.muon[k], muon[k]);
    EXPECT_DOUBLE_EQ(row.muon2[k], muon2[k]);
  }
  EXPECT_LT(relative_error(row.after.condition, 1e3), 1e-9);
}

TEST(SpectrumAlignment, RejectsDifferentShapes) {
  EXPECT_CONTAINS(testing::error_message([] {
                    spectrum_alignment("w", torch::ones({2, 3}), torch::ones({3, 2}), jordan());
                  }),
                  "'w': the Muon input has shape [2, 3] but the Muon² input [3, 2]");
}

// ---- the optimizers' inputs ---------------------------------------------------

TEST(MuonInputTracker, FollowsMuonAndMuon2Formulas) {
  // Two steps by hand: B = mu B + G; U = G + mu B; V = b2 V + (1 - b2) G^2;
  // P = U / (sqrt(V / (1 - b2^2)) + eps).
  const double mu = 0.9, b2 = 0.8;
  MuonInputOptions options;
  options.momentum = mu;
  options.second_moment.beta2 = b2;
  const auto G1 = random_matrix(5, 7, 5), G2 = random_matrix(5, 7, 6);
  MuonInputTracker tracker(G1, options);
  tracker.add_gradient(G1);
  tracker.add_gradient(G2);
  EXPECT_EQ(tracker.steps(), 2);
  const auto B = mu * G1 + G2;
  const auto U = G2 + mu * B;
  const auto V = (1 - b2) * (b2 * G1 * G1 + G2 * G2);
  const auto P = U / ((V / (1 - b2 * b2)).sqrt() + options.second_moment.eps);
  EXPECT_TENSOR_NEAR(tracker.muon_input(), U, 1e-12);
  EXPECT_TENSOR_NEAR(tracker.muon2_input(), P, 1e-9);

  options.source = MuonInputSource::kGradient;
  MuonInputTracker gradient_only(G1, options);
  gradient_only.add_gradient(G1);
  gradient_only.add_gradient(G2);
  EXPECT_TENSOR_NEAR(gradient_only.muon_input(), G2, 0);
  EXPECT_TENSOR_NEAR(gradient_only.muon2_input(), G2 / ((V / (1 - b2 * b2)).sqrt() + options.second_moment.eps),
                     1e-9);
}

TEST(MuonInputTracker, FailsBeforeTheFirstGradient) {
  MuonInputTracker tracker(torch::zeros({2, 2}), MuonInputOptions{});
  EXPECT_CONTAINS(testing::error_message([&] { tracker.muon_input(); }), "no gradient yet");
}

TEST(MuonInputs, ConstantSecondMomentChangesNothing) {
  // Gradients of constant magnitude c with random signs: V_hat = c^2 exactly,
  // so P = U / (c + eps) is U rescaled, and its spectrum's shape and its
  // alignment curve are U's.
  const double c = 0.25;
  MuonInputOptions options;
  torch::manual_seed(7);
  MuonInputTracker tracker(torch::zeros({24, 40}, torch::kFloat64), options);
  for (int t = 0; t < 6; ++t) tracker.add_gradient(c * torch::randn({24, 40}, torch::kFloat64).sign());
  const AlignmentRow row = spectrum_alignment("constant V", tracker.muon_input(), tracker.muon2_input(), jordan());
  EXPECT_LT(relative_error(row.after.condition, row.before.condition), 1e-9);
  EXPECT_LT(relative_error(row.after.spread_p90_p10, row.before.spread_p90_p10), 1e-9);
  EXPECT_EQ(row.after.rank, row.before.rank);
  for (size_t k = 0; k < row.muon.size(); ++k) EXPECT_NEAR(row.muon2[k], row.muon[k], 1e-9) << "k = " << k;
}

// M = D_r A D_c: a well-conditioned A whose rows and columns are scaled by
// factors spread over two decades each, so M's condition number is large
// only because of the scaling -- the structure an elementwise second moment
// can see and divide out.
torch::Tensor row_scales(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);  // the decades in a random order, not sorted
  return torch::logspace(0, -2, n, 10.0, torch::kFloat64).index_select(0, torch::randperm(n));
}

struct ScaledCase {
  torch::Tensor rows, cols;
  torch::Tensor gradient(uint64_t seed) const {
    return rows.unsqueeze(1) * random_matrix(rows.size(0), cols.size(0), seed) * cols.unsqueeze(0);
  }
};

void report(const std::string& label, const AlignmentRow& row) {
  std::cout << fmt::format("[ {} ] cond U {:.3g} -> P {:.3g}; alignment after 3 steps: Muon {:.4f}, Muon² {:.4f}; "
                           "Muon after 5: {:.4f}\n",
                           label, row.before.condition, row.after.condition, row.muon[3], row.muon2[3], row.muon[5]);
  ::testing::Test::RecordProperty(label + "_cond_U", fmt::format("{:.4g}", row.before.condition));
  ::testing::Test::RecordProperty(label + "_cond_P", fmt::format("{:.4g}", row.after.condition));
  ::testing::Test::RecordProperty(label + "_muon_k3", fmt::format("{:.4f}", row.muon[3]));
  ::testing::Test::RecordProperty(label + "_muon2_k3", fmt::format("{:.4f}", row.muon2[3]));
  ::testing::Test::RecordProperty(label + "_muon_k5", fmt::format("{:.4f}", row.muon[5]));
}

TEST(Muon2Preconditioning, UndoesRowAndColumnScalingInOneStep) {
  // One gradient, bias-corrected: V_hat = M^2, so P = U / (|M| + eps) =
  // (1 + mu) sign(A): the scaling is gone entirely.
  const ScaledCase scaled{row_scales(64, 10), row_scales(128, 11)};
  const auto M = scaled.gradient(12);
  MuonInputTracker tracker(M, MuonInputOptions{});
  tracker.add_gradient(M);
  const AlignmentRow row = spectrum_alignment("scaled", tracker.muon_input(), tracker.muon2_input(), jordan());
  report("one_step", row);
  EXPECT_GT(row.before.condition, 500);
  EXPECT_LT(row.after.condition, 10);
  EXPECT_GT(row.muon2[3], row.muon[3] + 0.1);
  EXPECT_GT(row.muon2[3], row.muon[5]);  // 3 steps of Muon² beat 5 of Muon: the Muon² paper's claim
}

TEST(Muon2Preconditioning, UndoesRowAndColumnScalingOverAStream) {
  // Twenty gradients D_r A_t D_c with independent A_t: V_hat estimates
  // d_i^2 c_j^2 E[a^2], so P is close to D_r^-1 U D_c^-1 / rms -- the
  // momentum of well-conditioned matrices -- not merely a sign pattern.
  const ScaledCase scaled{row_scales(64, 20), row_scales(128, 21)};
  MuonInputTracker tracker(scaled.gradient(0), MuonInputOptions{});
  for (uint64_t t = 0; t < 20; ++t) tracker.add_gradient(scaled.gradient(100 + t));
  const AlignmentRow row = spectrum_alignment("scaled", tracker.muon_input(), tracker.muon2_input(), jordan());
  report("stream_of_20", row);
  EXPECT_GT(row.before.condition, 500);
  EXPECT_LT(row.after.condition, 30);
  EXPECT_GT(row.muon2[3], row.muon[3] + 0.1);
  EXPECT_GT(row.muon2[3], row.muon[5]);
}

TEST(TestMatrices, IllConditionedHasTheAskedConditionAndIsSeeded) {
  TestMatrixOptions options;
  options.kind = TestMatrixKind::kIllConditioned;
  options.rows = 48;
  options.cols = 32;
  options.condition = 1e4;
  torch::manual_seed(1);
  const auto before = torch::randn({1});
  const auto M = test_matrix(options, 5);
  torch::manual_seed(1);
  EXPECT_TRUE(torch::equal(torch::randn({1}), before)) << "the global generator was used";
  EXPECT_EQ(M.dtype(), torch::kFloat32);
  EXPECT_LT(relative_error(spectrum_stats(M).condition, 1e4), 1e-2);
  EXPECT_TRUE(torch::equal(M, test_matrix(options, 5)));
  EXPECT_FALSE(torch::equal(M, test_matrix(options, 6)));
}

TEST(TestMatrices, InputsAreFirstStepOfBothOptimizers) {
  TestMatrixOptions options;
  options.count = 2;
  options.rows = 8;
  options.cols = 12;
  const auto pairs = test_matrix_inputs(options, MuonInputOptions{});
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].name, "random seed 1");
  const auto G = test_matrix(options, 1);
  EXPECT_TENSOR_NEAR(pairs[1].muon_input, 1.95 * G, 1e-5);
  EXPECT_TENSOR_NEAR(pairs[1].muon2_input, 1.95 * G / (G.abs() + 1e-8), 1e-4);
}

TEST(TestMatrices, BadOptionsAreNamed) {
  TestMatrixOptions options;
  options.kind = TestMatrixKind::kIllConditioned;
  options.condition = 0.5;
  EXPECT_CONTAINS(testing::error_message([&] { options.validate(); }), "--condition 0.5");
  EXPECT_CONTAINS(testing::error_message([] { parse_muon_input_source("velocity"); }),
                  "unknown Muon input source 'velocity': expected momentum or gradient");
}

// ---- a model's gradients ------------------------------------------------------

TEST(ModelMuonInputs, HiddenMatricesOnlyAndWeightsUntouched) {
  torch::manual_seed(3);
  models::Transformer model(models::model_preset("tiny-gpt2"));
  std::vector<torch::Tensor> weights_before;
  for (const auto& p : model->parameters()) weights_before.push_back(p.detach().clone());
  int64_t batches_served = 0;
  auto next_batch = [&] {
    ++batches_served;
    const auto tokens = torch::randint(0, model->config().vocab_size, {2, 9}, torch::kLong);
    return data::Batch{tokens.slice(1, 0, 8), tokens.slice(1, 1, 9)};
  };
  ModelGradientOptions gradients;
  gradients.batches = 3;
  const auto pairs = model_muon_inputs(model, next_batch, gradients, MuonInputOptions{});
  EXPECT_EQ(batches_served, 3);
  ASSERT_FALSE(pairs.empty());
  for (const auto& pair : pairs) {
    EXPECT_EQ(pair.name.find("wte"), std::string::npos) << pair.name;  // embeddings and head go to AdamW
    EXPECT_EQ(pair.muon_input.dim(), 2);
    EXPECT_GT(pair.muon_input.abs().sum().item<double>(), 0) << pair.name;
  }
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], weights_before[i])) << "parameter " << i << " changed";
    EXPECT_FALSE(params[i].grad().defined()) << "parameter " << i << " kept its gradient";
  }
}

// A stack of MoE experts' matrices is E matrices here as in Muon: one pair
// each, named "name[e]", holding slice e of the stack's gradient.
TEST(ModelMuonInputs, ExpertStacksGiveOneMatrixEach) {
  torch::manual_seed(4);
  models::Transformer model(models::model_preset("tiny-mla-moe"));
  const auto tokens = torch::randint(0, model->config().vocab_size, {2, 9}, torch::kLong);
  const data::Batch batch{tokens.slice(1, 0, 8), tokens.slice(1, 1, 9)};
  ModelGradientOptions gradients;
  gradients.batches = 1;
  MuonInputOptions options;
  options.source = MuonInputSource::kGradient;
  const auto pairs = model_muon_inputs(model, [&] { return batch; }, gradients, options);

  models::training_loss(model->forward(batch.inputs), batch.targets).backward();
  const std::string stack_name = "h.0.moe.experts.w2.weight";
  const auto grad = model->named_parameters()[stack_name].grad();
  int64_t found = 0;
  for (const auto& pair : pairs) {
    if (pair.name.rfind(stack_name + "[", 0) != 0) continue;
    const int64_t e = std::stoll(pair.name.substr(stack_name.size() + 1));
    EXPECT_EQ(pair.name, stack_name + "[" + std::to_string(e) + "]");
    EXPECT_TENSOR_NEAR(pair.muon_input, grad[e], 1e-6);
    ++found;
  }
  EXPECT_EQ(found, model->config().moe.num_routed);
}

// ---- output -------------------------------------------------------------------

std::vector<AlignmentRow> two_rows() {
  return {spectrum_alignment("a.weight", random_matrix(8, 12, 1), testing::ill_conditioned(8, 12, 100, 2), jordan()),
          spectrum_alignment("b.weight", random_matrix(12, 8, 3), random_matrix(12, 8, 4), jordan())};
}

TEST(AlignmentOutput, TableHasEveryRowAndTheMean) {
  const auto rows = two_rows();
  const std::string table = format_alignment_table(rows, {});
  EXPECT_CONTAINS(table, "muon k=3");
  EXPECT_CONTAINS(table, "muon2 k=3");
  EXPECT_CONTAINS(table, "muon k=5");
  EXPECT_CONTAINS(table, "a.weight");
  EXPECT_CONTAINS(table, "12x8");
  EXPECT_CONTAINS(table, "mean of 2");
  const double mean3 = (rows[0].muon2[3] + rows[1].muon2[3]) / 2;
  EXPECT_CONTAINS(table, fmt::format("{:.4f}", mean3));
}

TEST(AlignmentOutput, CsvHasEveryStepOfBothMethods) {
  const std::string csv = alignment_csv(two_rows());
  EXPECT_EQ(csv.rfind("parameter,rows,cols,method,rank,condition,spread_p90_p10,s_max,s_min,k,alignment\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 2 * 6);
  EXPECT_CONTAINS(csv, "\nb.weight,12,8,muon2,8,");
}

TEST(AlignmentOutput, PlotScriptHoldsTheCurvesAndMeans) {
  AlignmentPlotOptions options;
  options.out_dir = "/tmp/charts";
  const std::string script = alignment_plot_script(two_rows(), options);
  EXPECT_CONTAINS(script, "$muon2 << EOD\n0 ");
  EXPECT_CONTAINS(script, "for [i=3:4] $muon using 1:i");
  EXPECT_CONTAINS(script, "'Muon² (mean of 2)'");
  EXPECT_CONTAINS(script, "set output '/tmp/charts/alignment.svg'");
}

}  // namespace
}  // namespace muonlab::analysis
