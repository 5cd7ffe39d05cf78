#include "muonlab/optimizers/muon_step_graph.h"

#include "muonlab/core/errors.h"

namespace muonlab::optim {

namespace {

// Whether one slot's first half can be replayed: on the GPU, stepped here,
// and cut into head blocks (if at all) by a rule whose blocks never change
// (contiguous blocks are slices: no index tensor is made).
bool graphable(const MuonSlot& slot) {
  const MuonOptions& options = *slot.options;
  if (!options.cuda_graph() || !slot.owned || !slot.param.is_cuda()) return false;
  return options.group_size() <= 0 || options.grouping_rule() == GroupingRule::kContiguous;
}

const void* address(const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

bool same_direction_options(const MuonOptions& a, const MuonOptions& b) {
  // Everything muon_directions reads; lr and weight_decay belong to the
  // second half.
  const auto sa = a.second_moment_options(), sb = b.second_moment_options();
  const auto na = a.neuron_norm_options(), nb = b.neuron_norm_options();
  const auto pa = a.grouped_projections(), pb = b.grouped_projections();
  return a.momentum() == b.momentum() && a.momentum_kind() == b.momentum_kind() && a.nesterov() == b.nesterov() &&
         a.newton_schulz_config() == b.newton_schulz_config() && a.scale_rule() == b.scale_rule() &&
         a.ns_batching() == b.ns_batching() && a.orthogonalize() == b.orthogonalize() &&
         a.nd_params() == b.nd_params() && sa.kind == sb.kind && sa.beta2 == sb.beta2 && sa.eps == sb.eps &&
         sa.bias_correction == sb.bias_correction && a.neuron_norm() == b.neuron_norm() && na.beta2 == nb.beta2 &&
         na.eps == nb.eps && a.group_size() == b.group_size() && a.grouping_rule() == b.grouping_rule() &&
         pa.q == pb.q && pa.k == pb.k && pa.v == pb.v && pa.o == pb.o && pa.mla_up == pb.mla_up &&
         a.block_scale() == b.block_scale();
}

}  // namespace

std::vector<MuonStepGraph::SlotKey> MuonStepGraph::key_of(const std::vector<MuonSlot>& slots) {
  std::vector<MuonStepGraph::SlotKey> key;
  key.reserve(slots.size());
  for (const auto& slot : slots) {
    MuonStepGraph::SlotKey k;
    k.tensors = {address(slot.param),
                 address(slot.grad),
                 address(slot.momentum_buffer),
                 address(slot.second_moment.full),
                 address(slot.second_moment.row),
                 address(slot.second_moment.col),
                 address(slot.neuron_second_moment)};
    k.shape = slot.param.sizes().vec();
    k.param_dtype = slot.param.scalar_type();
    if (slot.grad.defined()) k.grad_dtype = slot.grad.scalar_type();
    k.options = *slot.options;
    const auto second_moment = slot.options->second_moment_options();
    if (second_moment.kind != SecondMomentKind::kNone && slot.grad.defined()) {
      k.bias_correction = second_moment_bias_correction(slot.step, second_moment);
    }
    key.push_back(std::move(k));
  }
  return key;
}

bool MuonStepGraph::SlotKey::operator==(const SlotKey& other) const {
  return tensors == other.tensors && shape == other.shape && param_dtype == other.param_dtype &&
         grad_dtype == other.grad_dtype && bias_correction == other.bias_correction &&
         same_direction_options(options, other.options);
}

bool muon_step_graph_applies(const std::vector<MuonSlot>& slots) {
  if (slots.empty()) return false;
  for (const auto& slot : slots) {
    if (!graphable(slot)) return false;
  }
  return true;
}

void muon_step(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator,
               std::shared_ptr<MuonStepGraph>& graph) {
  // Both halves check every slot before they change anything.
  std::vector<MuonDirection> directions;
  if (muon_step_graph_applies(slots)) {
    if (!graph) graph = std::make_shared<MuonStepGraph>();
    directions = graph->directions(slots, grouping_generator);
  } else {
    directions = muon_directions(slots, grouping_generator);
  }
  apply_muon_directions(slots, directions);
}

std::vector<MuonDirection> MuonStepGraph::directions(std::vector<MuonSlot>& slots,
                                                     torch::Generator& grouping_generator) {
  std::vector<SlotKey> key = key_of(slots);
  const torch::Device device = slots.front().param.device();
  const auto first_half = [&] { outputs_ = muon_directions(slots, grouping_generator); };
  if (!warmed_up_ || !(key == key_)) {
    outputs_.clear();  // the old graph's memory, before the graph goes
    graph_.reset();
    graph_.warm_up(first_half, device);
    key_ = std::move(key);
    warmed_up_ = true;
    ++eager_steps_;
    return outputs_;
  }
  if (!graph_.captured()) {
    outputs_.clear();  // the warm-up's, applied last step: freed outside the capture
    try {
      graph_.capture(first_half, device);
    } catch (const std::exception& error) {
      warmed_up_ = false;
      fail("Muon cuda_graph: the step could not be captured in a CUDA graph; nothing was changed. Set "
           "cuda_graph = false (optimizer.cuda_graph in a training config). The capture failed with: {}",
           error.what());
    }
    ++captures_;
  }
  graph_.replay();
  ++replays_;
  return outputs_;
}

}  // namespace muonlab::optim
