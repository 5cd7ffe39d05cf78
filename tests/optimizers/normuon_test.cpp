// NorMuon as an option of Muon (docs/algorithms.md, NorMuon), against the
// NorMuon paper's Algorithm 1 written out in float64 with an SVD polar
// factor, and against Muon's own update normalized by hand neuron by neuron
// (Group Muon and the 'jordan' NS included); its state resumes exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "muonlab/core/remove_tree.h"
#include "muonlab/optimizers/hybrid.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/muon_step.h"
#include "test_util.h"
#include "tiny_model.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::random_matrix;

// U V^T of the SVD: the exact orthogonalization NS approximates.
torch::Tensor svd_polar(const torch::Tensor& M) {
  const auto [U, S, Vh] = torch::linalg_svd(M, /*full_matrices=*/false);
  return U.matmul(Vh);
}

// Algorithm 1 of the NorMuon paper, one r x c matrix: EMA momentum (no
// Nesterov), O = Orth(M), v = beta2 v + (1 - beta2) mean_cols(O*O),
// O_hat = O / (sqrt(v) + eps), step 0.2 lr sqrt(r c) / ||O_hat||_F, and
// decoupled weight decay.
struct PaperNorMuon {
  double lr = 0.03, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  torch::Tensor M, v;

  void step(torch::Tensor& W, const torch::Tensor& G) {
    if (!M.defined()) {
      M = torch::zeros_like(W);
      v = torch::zeros({W.size(0)}, W.options());
    }
    M = beta1 * M + (1 - beta1) * G;
    const auto O = svd_polar(M);
    v = beta2 * v + (1 - beta2) * (O * O).mean(1);
    const auto O_hat = O / (v.sqrt() + eps).unsqueeze(1);
    const double step_size = 0.2 * lr * std::sqrt(double(W.size(0) * W.size(1))) / O_hat.norm().item<double>();
    W = W - lr * weight_decay * W - step_size * O_hat;
  }
};

TEST(NorMuon, MatchesThePapersAlgorithmWithAnExactPolarFactor) {
  // With NS run to convergence in float64, ||O||_F = sqrt(min(r, c)), so the
  // norm-restoring rescale under 'match_rms_adamw' is the paper's step size.
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{12, 20}, {20, 12}}) {
    PaperNorMuon paper;
    torch::Tensor expected = random_matrix(rows, cols, 1);
    torch::Tensor param = expected.clone().set_requires_grad(true);
    Muon normuon(std::vector<torch::Tensor>{param}, MuonOptions(paper.lr)
                                                        .momentum(paper.beta1)
                                                        .nesterov(false)
                                                        .weight_decay(paper.weight_decay)
                                                        .scale_rule(ScaleRule::kMatchRmsAdamW)
                                                        .ns_coefficients(ns_schedule("taylor"))
                                                        .ns_steps(40)
                                                        .ns_dtype(NsDtype::kFloat64)
                                                        .neuron_norm(true)
                                                        .neuron_beta2(paper.beta2)
                                                        .neuron_eps(paper.eps));
    for (uint64_t step = 0; step < 4; ++step) {
      const auto G = random_matrix(rows, cols, 10 + step);
      paper.step(expected, G);
      param.mutable_grad() = G.clone();
      normuon.step();
      EXPECT_TRUE(torch::allclose(param.detach(), expected, 1e-10, 1e-10))
          << rows << " x " << cols << ", step " << step + 1 << ": max difference "
          << (param.detach() - expected).abs().max().item<double>();
    }
  }
}

// A fused QKV weight with 4 heads of 3, for Group Muon.
TaggedParam qkv_param(uint64_t seed) {
  TaggedParam p{"attn.qkv", random_matrix(36, 12, seed).set_requires_grad(true), ParamRole::kAttnQKV};
  p.heads = HeadLayout{12, 3, HeadAxis::kRows, {4, 4, 4}};
  return p;
}

// NorMuon's update is Muon's (here Group Muon's, 'jordan' NS, Nesterov)
// divided row by row by the root of the EMA of its rows' mean squares, then
// rescaled to Muon's Frobenius norm: checked over steps, so the EMA too.
TEST(NorMuon, NormalizesGroupMuonsUpdateNeuronByNeuron) {
  const auto options = MuonOptions(0.02).weight_decay(0).ns_dtype(NsDtype::kFloat64).group_size(2);
  std::vector<TaggedParam> muon_params{qkv_param(3)}, normuon_params{qkv_param(3)};
  Muon muon(muon_params, options);
  Muon normuon(normuon_params, MuonOptions(options).neuron_norm(true).neuron_beta2(0.9));
  muon.record_updates(true);
  normuon.record_updates(true);
  torch::Tensor v = torch::zeros({36}, torch::kFloat64);
  for (uint64_t step = 0; step < 3; ++step) {
    const auto G = random_matrix(36, 12, 20 + step);
    muon_params[0].tensor.mutable_grad() = G.clone();
    normuon_params[0].tensor.mutable_grad() = G.clone();
    muon.step();
    normuon.step();
    // The same momentum and NS on both sides; Muon's update is s O.
    const double s = scale_factor(ScaleRule::kOriginal, 36, 12);
    const auto O = muon.last_update(muon_params[0].tensor) / s;
    v = 0.9 * v + 0.1 * (O * O).mean(1);
    const auto O_hat = O / (v.sqrt() + 1e-8).unsqueeze(1);
    const auto expected = s * O_hat * (O.norm() / O_hat.norm());
    const auto actual = normuon.last_update(normuon_params[0].tensor);
    EXPECT_TRUE(torch::allclose(actual, expected, 1e-12, 1e-12))
        << "step " << step + 1 << ": max difference " << (actual - expected).abs().max().item<double>();
    // Not the identity: rows of different size were evened out.
    EXPECT_GT((actual - s * O).abs().max().item<double>(), 1e-3);
  }
}

TEST(NorMuon, KeepsOneSecondMomentPerOutputNeuron) {
  const MuonOptions options = MuonOptions().neuron_norm(true);
  const auto matrix = torch::zeros({6, 4});
  EXPECT_EQ(muon_state_shapes(matrix, options, matrix_view(matrix, NdParams::kAuto, "w")).back(),
            (std::pair<std::string, std::vector<int64_t>>{"neuron_second_moment", {6}}));
  // A stack of expert matrices: one per neuron of each expert.
  const auto experts = torch::zeros({3, 6, 4});
  EXPECT_EQ(
      muon_state_shapes(experts, options, matrix_view(experts, NdParams::kBatch, "experts")).back().second,
      (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(muon_state_shapes(matrix, MuonOptions(), matrix_view(matrix, NdParams::kAuto, "w")).size(), 1u);
}

TEST(NorMuon, RefusesABadDecayOrEpsilonNamingTheField) {
  auto param = random_matrix(4, 4, 1).set_requires_grad(true);
  EXPECT_CONTAINS(error_message([&] { Muon(std::vector<torch::Tensor>{param}, MuonOptions().neuron_norm(true).neuron_beta2(1)); }),
                  "NorMuon neuron_beta2 = 1: expected a number in [0, 1)");
  EXPECT_CONTAINS(error_message([&] { Muon(std::vector<torch::Tensor>{param}, MuonOptions().neuron_norm(true).neuron_eps(0)); }),
                  "NorMuon neuron_eps = 0: expected a finite number > 0");
}

TEST(NorMuon, ResumesFromItsStateFileBitForBit) {
  const auto dir = std::filesystem::temp_directory_path() / ("muonlab_normuon_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "opt.pt").string();
  const auto muon = MuonOptions(0.02).neuron_norm(true);
  const auto train = [](testing::TinyModel& model, MuonWithAuxAdamW& optimizer, int steps, uint64_t seed) {
    for (int step = 0; step < steps; ++step) {
      optimizer.zero_grad();
      model->loss(testing::tiny_batch(seed + step)).backward();
      optimizer.step();
    }
  };
  auto model = testing::make_tiny_model(1);
  MuonWithAuxAdamW optimizer(model->named_parameters(), muon, AdamWOptions(1e-2));
  train(model, optimizer, 3, 100);
  optimizer.save_to_file(file);

  auto resumed_model = testing::make_tiny_model(2);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : resumed_model->named_parameters()) item.value().copy_(model->named_parameters()[item.key()]);
  }
  MuonWithAuxAdamW resumed(resumed_model->named_parameters(), muon, AdamWOptions(1e-2));
  resumed.load_from_file(file);
  // A plain Muon state file has no neuron second moment to give NorMuon.
  auto plain_model = testing::make_tiny_model(3);
  MuonWithAuxAdamW plain(plain_model->named_parameters(), MuonOptions(0.02), AdamWOptions(1e-2));
  train(plain_model, plain, 1, 100);
  const std::string plain_file = (dir / "plain.pt").string();
  plain.save_to_file(plain_file);
  EXPECT_CONTAINS(error_message([&] { MuonWithAuxAdamW(resumed_model->named_parameters(), muon, AdamWOptions(1e-2)).load_from_file(plain_file); }),
                  "neuron_second_moment");

  train(model, optimizer, 2, 200);
  train(resumed_model, resumed, 2, 200);
  for (const auto& item : resumed_model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), model->named_parameters()[item.key()])) << item.key();
  }
  remove_tree(dir);
}

}  // namespace
}  // namespace muonlab::optim
