// The two matrices spectrum_alignment.h compares, built from gradients the
// way the optimizers build them (docs/algorithms.md, Muon and Directional
// alignment), while no weight changes:
//   B = mu B + G;  U = G + mu B (Nesterov) or U = B     -- what Muon orthogonalizes
//   V = beta2 V + (1 - beta2) G*G;  P = U / (sqrt(V_hat) + eps)  -- Muon²'s input
// Sources of gradients: a model's own, over batches of its training data, or
// seeded test matrices taken as a single gradient; the tracker that folds
// them in is muon_input_tracker.h.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "muonlab/analysis/muon_input_tracker.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/models/transformer.h"

namespace muonlab::analysis {

// A named pair for spectrum_alignment: U and P.
struct MuonInputPair {
  std::string name;
  torch::Tensor muon_input;
  torch::Tensor muon2_input;
};

// ---- test matrices ----------------------------------------------------------

enum class TestMatrixKind {
  kRandom,          // i.i.d. standard normal entries
  kIllConditioned,  // U diag(s) V^T, random orthonormal U, V, s log-spaced from 1 to 1/condition
};

struct TestMatrixOptions {
  TestMatrixKind kind = TestMatrixKind::kRandom;
  int64_t rows = 64;
  int64_t cols = 128;
  double condition = 1e4;  // kIllConditioned only
  int64_t count = 1;       // matrices i = 0..count-1 use seed + i
  uint64_t seed = 0;
  void validate() const;
};
std::string describe(const TestMatrixOptions& options);  // "ill-conditioned 64x128, condition 1e+04"

// One float32 test matrix from its own generator (the global one is left alone).
torch::Tensor test_matrix(const TestMatrixOptions& options, uint64_t seed);

// Each test matrix taken as the first and only gradient G of a fresh
// optimizer: U = (1 + mu) G with Nesterov momentum, and, since the
// bias-corrected V_hat of one step is G*G, P = U / (|G| + eps), close to
// (1 + mu) sign(G). That is what Muon² does at step 1, and is the easiest
// case for it: sign(G) is well conditioned whatever G's spectrum.
std::vector<MuonInputPair> test_matrix_inputs(const TestMatrixOptions& matrices, const MuonInputOptions& options);

// ---- a model's own gradients ------------------------------------------------

struct ModelGradientOptions {
  int64_t batches = 20;        // forward/backward passes, one gradient each
  bool bf16_autocast = false;  // as the trainer's run.dtype resolved to bf16
};

// For every parameter the Muon hybrid routes to Muon (optim::route), in the
// model's order: U and P after `batches` gradients of the training loss on
// next_batch()'s batches (moved to the model's device). The weights are
// never changed; the gradients are freed at the end.
std::vector<MuonInputPair> model_muon_inputs(models::Transformer& model, const std::function<data::Batch()>& next_batch,
                                             const ModelGradientOptions& gradients, const MuonInputOptions& options);

}  // namespace muonlab::analysis
