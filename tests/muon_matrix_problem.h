// Three matrices (wide, tall, square) and the gradients of three steps, for
// holding Muon's fused and general paths against each other and against a
// hand reference.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "muonlab/optimizers/muon.h"

namespace muonlab::testing {

struct MatrixProblem {
  std::vector<torch::Tensor> weights;
  std::vector<torch::Tensor> grads;  // grads[3 i + step] for weight i
};

// Weights from randn; gradients from `gradient(rows, cols)` (randn unless
// given), all drawn after manual_seed(seed).
inline MatrixProblem make_matrix_problem(
    uint64_t seed, const std::function<torch::Tensor(int64_t, int64_t)>& gradient = nullptr) {
  torch::manual_seed(seed);
  MatrixProblem problem;
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{24, 40}, {40, 24}, {32, 32}}) {
    problem.weights.push_back(torch::randn({rows, cols}));
    for (int step = 0; step < 3; ++step) {
      problem.grads.push_back(gradient ? gradient(rows, cols) : torch::randn({rows, cols}));
    }
  }
  return problem;
}

// The weights after three Muon steps with `options`.
inline std::vector<torch::Tensor> run_three_steps(const MatrixProblem& problem, const optim::MuonOptions& options) {
  std::vector<torch::Tensor> params;
  for (const auto& w : problem.weights) params.push_back(w.clone().set_requires_grad(true));
  optim::Muon muon(params, options);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = problem.grads[i * 3 + step].clone();
    muon.step();
  }
  return params;
}

// The weights after three steps on the fused path and on the general one,
// from the same options otherwise.
struct BothPaths {
  std::vector<torch::Tensor> fused, general;
};

inline BothPaths run_both_paths(const MatrixProblem& problem, const optim::MuonOptions& options) {
  return {run_three_steps(problem, optim::MuonOptions(options).fused(true)),
          run_three_steps(problem, optim::MuonOptions(options).fused(false))};
}

}  // namespace muonlab::testing
