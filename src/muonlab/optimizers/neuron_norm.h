// NorMuon's neuron-wise normalization (docs/algorithms.md, NorMuon): after
// Newton-Schulz, each output neuron's row of the orthogonalized update is
// divided by the root of an EMA of its mean square, then the whole matrix
// is rescaled to the Frobenius norm it had, so rows that NS left large no
// longer dominate the step while its size (and so the learning rate) stays
// Muon's. From Zichong Li, Liming Liu, Chen Liang, Weizhu Chen, Tuo Zhao,
// "NorMuon: Making Muon more efficient and scalable" (2025), as in
// modded-nanogpt's NorMuon: the rescale restores the orthogonalized
// update's norm, which equals the paper's 0.2 sqrt(r c) / ||O||_F under
// scale_rule = match_rms_adamw when NS has converged.
//
// Standalone like second_moment.h: Muon calls normalize_neurons() between
// NS and its scale, and keeps the buffer next to its momentum.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace muonlab::optim {

// NorMuon's name as the trainer's optimizer.name and the Python variants
// call it: Muon with neuron_norm = true.
inline constexpr const char* kNorMuonName = "normuon";

struct NeuronNormOptions {
  double beta2 = 0.95;  // the EMA's decay (the paper's beta2)
  double eps = 1e-8;    // added to the root, as Adam's
  // Fails naming the field and value (beta2 outside [0, 1), eps <= 0 or
  // not finite).
  void validate() const;
};

// The buffer's shape for an update of view shape [..., r, c]: [..., r].
std::vector<int64_t> neuron_state_shape(c10::IntArrayRef view_shape);

// Zeros of that shape, fp32 (fp64 for fp64 parameters), on param's device.
torch::Tensor make_neuron_state(const torch::Tensor& param, c10::IntArrayRef view_shape);

// Folds the row mean squares of `orthogonalized` ([..., r, c]) into `state`
// ([..., r]) and returns the normalized update, rescaled per matrix to the
// Frobenius norm of `orthogonalized`, in its dtype. No bias correction: it
// would multiply every row of a matrix alike, which the rescale undoes.
// Computes in the state's dtype. Fails naming the shapes when `state` does
// not fit.
torch::Tensor normalize_neurons(const torch::Tensor& orthogonalized, torch::Tensor& state,
                                const NeuronNormOptions& options);

}  // namespace muonlab::optim
