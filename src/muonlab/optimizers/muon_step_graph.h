// Muon's step on a GPU with its first half (muon_directions: momentum,
// second moments, Newton-Schulz, NorMuon; a few hundred kernels for a GPT-2)
// replayed from one CUDA graph. The second half, weight decay and the
// lr-scaled update, runs as usual, so a schedule's learning rate needs no
// new capture.
//
// A graph replays the addresses and scalars it was captured with, so each
// step is keyed by every tensor the first half reads or writes (address,
// shape, dtype) and every option value it uses, Muon²'s bias correction
// included. A step whose key differs from the last step's runs for real (on
// the capture's stream: the warm-up CUDA graphs need); the next step with
// the same key captures and replays. Steady training gives one warm-up and
// one capture, then replays; a momentum ramp, a gradient freed and
// allocated elsewhere, or Muon²'s first ~700 steps (until 1 - beta2^t
// rounds to 1) simply run eagerly.
//
// Steps that cannot be replayed run eagerly every time: a parameter off the
// GPU, random or strided head grouping (new index tensors each step),
// parameters another rank steps. Options: MuonOptions::cuda_graph.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "muonlab/core/cuda_graph.h"
#include "muonlab/optimizers/muon_step.h"

namespace muonlab::optim {

// Whether every slot asks for (cuda_graph) and allows a replayed first half.
bool muon_step_graph_applies(const std::vector<MuonSlot>& slots);

class MuonStepGraph;

// muon_step, with the first half replayed from `graph` (made on first use)
// where muon_step_graph_applies(slots), else computed as usual.
void muon_step(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator,
               std::shared_ptr<MuonStepGraph>& graph);

class MuonStepGraph {
 public:
  // muon_directions(slots, grouping_generator), from the graph where the
  // key allows; muon_step_graph_applies(slots) must hold.
  std::vector<MuonDirection> directions(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator);

  // How the steps so far ran, for tests and reports.
  int64_t eager_steps() const { return eager_steps_; }
  int64_t captures() const { return captures_; }
  int64_t replays() const { return replays_; }

  // Every key of one step: one entry per slot.
  struct SlotKey {
    std::vector<const void*> tensors;  // param, grad and every state buffer (null where absent)
    std::vector<int64_t> shape;
    c10::ScalarType param_dtype = c10::ScalarType::Undefined;
    c10::ScalarType grad_dtype = c10::ScalarType::Undefined;
    MuonOptions options{0.0};
    double bias_correction = 1.0;  // Muon²'s 1 - beta2^step
    bool operator==(const SlotKey& other) const;
  };
  static std::vector<SlotKey> key_of(const std::vector<MuonSlot>& slots);

 private:
  CudaGraph graph_;
  std::vector<SlotKey> key_;  // of the last step
  bool warmed_up_ = false;    // the last step ran on the capture's stream with key_
  std::vector<MuonDirection> outputs_;  // the graph's, rewritten by each replay
  int64_t eager_steps_ = 0, captures_ = 0, replays_ = 0;
};

}  // namespace muonlab::optim
