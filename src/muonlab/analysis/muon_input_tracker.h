// Muon's input U and Muon²'s input P of one matrix, built from its
// gradients the way the optimizers build them (docs/algorithms.md, Muon and
// Directional alignment), while no weight changes:
//   B = mu B + G;  U = G + mu B (Nesterov) or U = B     -- what Muon orthogonalizes
//   V = beta2 V + (1 - beta2) G*G;  P = U / (sqrt(V_hat) + eps)  -- Muon²'s input
// Free of the model layer, so the Python extension takes it too.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "muonlab/optimizers/second_moment.h"

namespace muonlab::analysis {

// Which matrix Muon would orthogonalize: the momentum-mixed update U (what
// Muon does), or the last gradient alone (the raw material, no momentum).
enum class MuonInputSource { kMomentum, kGradient };
MuonInputSource parse_muon_input_source(const std::string& name);  // "momentum", "gradient"
std::string to_string(MuonInputSource source);

// Muon²'s public defaults: full second moment, beta2 0.95, eps 1e-8, bias
// correction.
inline optim::SecondMomentOptions muon2_second_moment() {
  optim::SecondMomentOptions options;
  options.kind = optim::SecondMomentKind::kFull;
  return options;
}

struct MuonInputOptions {
  MuonInputSource source = MuonInputSource::kMomentum;
  double momentum = 0.95;
  bool nesterov = true;
  // kFactored gives Muon²-F's input instead; kNone is refused.
  optim::SecondMomentOptions second_moment = muon2_second_moment();
  // Fails naming the bad value.
  void validate() const;
};

// Muon's momentum buffer and Muon²'s second moment of one matrix, fed one
// gradient per step.
class MuonInputTracker {
 public:
  MuonInputTracker(const torch::Tensor& parameter, MuonInputOptions options);

  void add_gradient(const torch::Tensor& grad);
  int64_t steps() const { return steps_; }

  // U: the momentum-mixed update, or the last gradient (options.source).
  // Both fail before the first gradient.
  const torch::Tensor& muon_input() const;
  // P = U / (sqrt(V_hat) + eps), V over every gradient so far.
  const torch::Tensor& muon2_input() const;

 private:
  void check_started() const;

  MuonInputOptions options_;
  torch::Tensor momentum_buffer_;
  optim::SecondMomentState second_moment_;
  torch::Tensor muon_input_;
  torch::Tensor muon2_input_;
  int64_t steps_ = 0;
};

}  // namespace muonlab::analysis
