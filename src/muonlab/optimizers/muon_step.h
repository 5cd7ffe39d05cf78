// Muon's step as a function of explicit tensors: momentum, the optional
// second moment, Newton-Schulz (whole matrices, head blocks, stacks of
// matrices; same shapes batched together), the shape scale and decoupled
// weight decay. The caller owns the state. muonlab::optim::Muon calls it
// over the state it keeps in torch::optim's map; the Python binding calls
// it over the state it keeps in torch.optim's `state` dict, so both run the
// same arithmetic (docs/design.md, Optimizers).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "muonlab/optimizers/matrix_view.h"
#include "muonlab/optimizers/muon.h"

namespace muonlab::optim {

// One parameter's part in a step. Tensors are handles: the step writes
// param, momentum_buffer and the second-moment buffers in place.
struct MuonSlot {
  std::string name;                // for messages
  torch::Tensor param;
  torch::Tensor grad;
  torch::Tensor momentum_buffer;   // param's shape
  SecondMomentState second_moment; // second_moment_state_for(...), or empty for plain Muon
  torch::Tensor neuron_second_moment;  // NorMuon: [..., r] of the view (make_neuron_state)
  int64_t step = 0;                // the 1-based step being taken
  const MuonOptions* options = nullptr;
  const TaggedParam* tag = nullptr;  // role and head layout (Group Muon); may be null
  // false: another rank steps this parameter (distributed Muon); the slot
  // only advances random grouping's generator as its step would.
  bool owned = true;
  // Filled when record_update: the applied direction times the lr scale
  // (before the learning rate), in param's dtype.
  bool record_update = false;
  torch::Tensor recorded_update;
};

// Steps every owned slot. `grouping_generator` (a CPU generator) draws the
// head permutations of random grouping, in slot order. Fails naming the
// parameter before anything changes when a slot's shape, state or head
// layout does not fit its options.
void muon_step(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator);

// muon_step in two halves, so that the first can be replayed from a CUDA
// graph (muon_step_graph.h) while the learning rate changes every step.
//
// The first half checks every slot, then writes momentum (and Muon²'s and
// NorMuon's buffers) and returns each owned slot's direction: orthogonalized,
// in the parameter's shape and dtype, with the lr scale s(r, c) it is applied
// with. CPU slots the fused step takes (fused_muon_cpu.h) are stepped whole
// here and have no direction. Reads no learning rate or weight decay.
struct MuonDirection {
  size_t slot;  // index into the slots
  torch::Tensor direction;
  double scale = 1.0;
};
std::vector<MuonDirection> muon_directions(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator);
// The second half: decoupled weight decay, then param -= lr * scale *
// direction, and the recorded update where the slot asks for it.
void apply_muon_directions(std::vector<MuonSlot>& slots, const std::vector<MuonDirection>& directions);

// Checks what muon_step would refuse about one parameter, without stepping:
// its matrix view under options.nd_params() and, for Group Muon, its head
// layout. Returns the view.
MatrixView check_muon_param(const torch::Tensor& param, const std::string& name, const MuonOptions& options,
                            const TaggedParam* tag);

// The state buffers Muon keeps for `param` under `options`, by the names
// its state files and torch.optim state dicts use, with their shapes:
// momentum_buffer, and second_moment (Muon²) or second_moment_row and
// second_moment_col (Muon²-F), and neuron_second_moment (NorMuon).
std::vector<std::pair<std::string, std::vector<int64_t>>> muon_state_shapes(const torch::Tensor& param,
                                                                          const MuonOptions& options,
                                                                          const MatrixView& view);

// Zeros of the shapes the second-moment buffers of `param` need under
// `options` (none for plain Muon; the factored ones per matrix of the view).
SecondMomentState second_moment_state_for(const torch::Tensor& param, const MuonOptions& options,
                                          const MatrixView& view);

}  // namespace muonlab::optim
