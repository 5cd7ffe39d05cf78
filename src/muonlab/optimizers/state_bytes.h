// How much memory an optimizer's state holds, read from the state itself
// (every buffer its VisitableParamState lists), for the memory report of
// `muonlab bench optim`: AdamW keeps two moments per weight, Muon one
// momentum, Muon² a momentum and an elementwise second moment, Muon²-F a
// momentum and r + c second-moment sums per r x c matrix.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace muonlab::optim {

// Bytes of every tensor buffer in `optimizer`'s per-parameter state (the
// parameters themselves and integer counters not included). Parameters
// without state yet (no step taken) count 0.
int64_t optimizer_state_bytes(torch::optim::Optimizer& optimizer);

// Elements of all parameters `optimizer` holds, for bytes per parameter.
int64_t optimizer_parameter_count(const torch::optim::Optimizer& optimizer);

}  // namespace muonlab::optim
