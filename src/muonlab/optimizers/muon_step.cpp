#include "muonlab/optimizers/muon_step.h"

#include <algorithm>
#include <map>
#include <optional>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/optimizers/fused_muon_cpu.h"
#include "muonlab/optimizers/param_dtype.h"

namespace muonlab::optim {

namespace {

// One matrix for NS: a whole update, one head block of it, or one matrix of
// a stack.
struct NsJob {
  torch::Tensor matrix;  // replaced by its orthogonalized form
  const MuonOptions* options;
  bool always_batched;  // head blocks and stacks: one batched call per shape, as promised
};

// One owned slot's step in flight: its momentum-mixed update (replaced by
// the orthogonalized one) and the lr scale s(r, c) (1 when Group Muon scaled
// each block by its own shape).
struct Pending {
  MuonSlot* slot;
  MatrixView view;
  torch::Tensor update;  // in view.shape()
  double scale = 1.0;
  std::optional<HeadBlocks> blocks;  // Group Muon's, planned in slot order
};

// Matrices that can share one batched NS call: the same oriented shape
// (short side, long side), device and NS settings. A matrix that is not to
// be batched (ns_batching) has a bucket of its own.
struct BucketKey {
  int64_t short_side, long_side;
  torch::Device device;
  NewtonSchulzConfig ns;
  bool orthogonalize;
  std::optional<size_t> alone;  // the job's index when it is stepped on its own

  bool operator==(const BucketKey& o) const {
    return short_side == o.short_side && long_side == o.long_side && device == o.device &&
           ns == o.ns &&
           orthogonalize == o.orthogonalize && alone == o.alone;
  }
};

BucketKey bucket_key(const NsJob& job, size_t index) {
  const torch::Tensor& m = job.matrix;
  const MuonOptions& options = *job.options;
  const bool batched = job.always_batched || options.ns_batching() == NsBatching::kAlways ||
                       (options.ns_batching() == NsBatching::kAuto && m.is_cuda());
  return {std::min(m.size(0), m.size(1)),
          std::max(m.size(0), m.size(1)),
          m.device(),
          options.newton_schulz_config(),
          options.orthogonalize(),
          batched ? std::nullopt : std::optional<size_t>(index)};
}

// Owned slots that share options, step count and device: they take their
// momentum, second-moment and weight-decay updates together, each as one
// multi-tensor (_foreach) op, a few launches per step on a GPU instead of a
// chain per parameter (on the CPU those ops loop per tensor, the same
// arithmetic).
struct SlotBatch {
  const MuonOptions* options;
  int64_t step;
  torch::Device device;
  std::vector<size_t> members;  // indices into the step's pending updates
};

std::vector<SlotBatch> batch_slots(const std::vector<Pending>& pending) {
  std::vector<SlotBatch> batches;
  for (size_t i = 0; i < pending.size(); ++i) {
    const MuonSlot& slot = *pending[i].slot;
    auto batch = std::find_if(batches.begin(), batches.end(), [&](const SlotBatch& b) {
      return b.options == slot.options && b.step == slot.step && b.device == slot.param.device();
    });
    if (batch == batches.end()) batch = batches.insert(batches.end(), {slot.options, slot.step, slot.param.device(), {}});
    batch->members.push_back(i);
  }
  return batches;
}

// U from the gradients and the momentum buffers (updated in place), for
// every slot of the batch.
std::vector<torch::Tensor> momentum_updates(const SlotBatch& batch, std::vector<Pending>& pending) {
  std::vector<torch::Tensor> buffers, grads;
  for (size_t i : batch.members) {
    buffers.push_back(pending[i].slot->momentum_buffer);
    grads.push_back(pending[i].slot->grad);
  }
  const MuonOptions& options = *batch.options;
  const double mu = options.momentum();
  if (options.momentum_kind() == MomentumKind::kSum) {
    at::_foreach_mul_(buffers, mu);
    at::_foreach_add_(buffers, grads);
    if (options.nesterov()) return at::_foreach_add(grads, buffers, mu);
  } else {
    compat::foreach_lerp_(buffers, grads, 1.0 - mu);
    if (options.nesterov()) return compat::foreach_lerp(grads, buffers, mu);
  }
  // A copy: Group Muon writes its blocks back into the update in place.
  std::vector<torch::Tensor> copies;
  for (const auto& buffer : buffers) copies.push_back(buffer.clone());
  return copies;
}

// Momentum, then Muon²'s second moment where the options ask for it, for
// every slot of the batch; fills each pending update.
void momentum_and_second_moment(const SlotBatch& batch, std::vector<Pending>& pending) {
  std::vector<torch::Tensor> updates = momentum_updates(batch, pending);
  const auto sm = batch.options->second_moment_options();
  if (sm.kind != SecondMomentKind::kNone) {
    std::vector<torch::Tensor> grads;
    std::vector<SecondMomentState*> states;
    for (size_t k = 0; k < batch.members.size(); ++k) {
      Pending& p = pending[batch.members[k]];
      // The full second moment is elementwise (any shape); the factored one
      // works on the matrix view.
      if (sm.kind == SecondMomentKind::kFactored) updates[k] = p.view.of(updates[k]);
      grads.push_back(sm.kind == SecondMomentKind::kFactored ? p.view.of(p.slot->grad) : p.slot->grad);
      states.push_back(&p.slot->second_moment);
    }
    precondition_all(updates, grads, states, batch.step, sm);
  }
  for (size_t k = 0; k < batch.members.size(); ++k) {
    Pending& p = pending[batch.members[k]];
    p.update = p.view.of(updates[k]);
  }
}

void orthogonalize_jobs(std::vector<NsJob>& jobs) {
  // Few buckets per step (one per shape and setting): a linear search suffices.
  std::vector<std::pair<BucketKey, std::vector<NsJob*>>> buckets;
  for (size_t i = 0; i < jobs.size(); ++i) {
    BucketKey key = bucket_key(jobs[i], i);
    auto bucket = std::find_if(buckets.begin(), buckets.end(), [&](const auto& b) { return b.first == key; });
    if (bucket == buckets.end()) bucket = buckets.insert(buckets.end(), {std::move(key), {}});
    bucket->second.push_back(&jobs[i]);
  }
  for (auto& [key, members] : buckets) {
    const MuonOptions& options = *members.front()->options;
    const auto config = options.newton_schulz_config();
    const auto dtype = resolve_ns_dtype(config.dtype, members.front()->matrix.device());
    // Orient every matrix wide so that r x c and c x r share a batch; NS
    // commutes with transposition (and so does the normalization).
    std::vector<torch::Tensor> oriented;
    for (auto* job : members) {
      const auto& m = job->matrix;
      oriented.push_back(m.size(0) > m.size(1) ? m.t() : m);
    }
    // Stacked first, then cast: one conversion per bucket, not per matrix.
    // Mixed dtypes stack in the widest, which holds the others exactly, so
    // the values are those of casting each matrix.
    const torch::Tensor stacked = torch::stack(oriented).to(dtype);
    const auto result = options.orthogonalize() ? newton_schulz(stacked, config) : normalized_direction(stacked);
    for (size_t i = 0; i < members.size(); ++i) {
      auto& m = members[i]->matrix;
      const auto o = result[static_cast<int64_t>(i)];
      m = (m.size(0) > m.size(1) ? o.t() : o);
    }
  }
}

// s(out, in) of one head block, cut from a weight stored transposed or not.
double block_scale_factor(ScaleRule rule, const torch::Tensor& block, bool transposed) {
  const int64_t out = block.size(transposed ? 1 : 0), in = block.size(transposed ? 0 : 1);
  return scale_factor(rule, out, in);
}

// The head blocks Group Muon cuts the slot's parameter into, or nullopt.
// Random grouping draws from `generator` here, once per call.
std::optional<HeadBlocks> head_blocks_of(const MuonSlot& slot, torch::Generator& generator) {
  const MuonOptions& options = *slot.options;
  if (options.group_size() <= 0 || slot.tag == nullptr) return std::nullopt;
  return plan_param_head_blocks(*slot.tag, options.grouped_projections(), options.group_size(),
                                options.grouping_rule(),
                                options.grouping_rule() == GroupingRule::kRandom
                                    ? std::optional<torch::Generator>(generator)
                                    : std::nullopt);
}

// Replaces each pending update by its orthogonalized form: cut into its
// head blocks first where Group Muon applies, a stack into its matrices;
// every matrix of one shape and setting in one batched call.
void orthogonalize(std::vector<Pending>& pending) {
  struct Split {
    Pending* pending;
    size_t first_job;
  };
  std::vector<NsJob> jobs;
  std::vector<Split> splits;
  std::vector<std::pair<Pending*, size_t>> wholes;
  for (Pending& p : pending) {
    const MuonSlot& slot = *p.slot;
    if (p.blocks) {
      splits.push_back({&p, jobs.size()});
      for (auto& block : gather_head_blocks(p.update, *slot.tag->heads, *p.blocks)) {
        jobs.push_back({block, slot.options, true});
      }
    } else if (p.view.batched) {
      wholes.emplace_back(&p, jobs.size());
      for (auto& matrix : p.update.unbind(0)) jobs.push_back({matrix, slot.options, true});
    } else {
      wholes.emplace_back(&p, jobs.size());
      jobs.push_back({p.update, slot.options, false});
    }
  }
  orthogonalize_jobs(jobs);
  for (auto& [p, first] : wholes) {
    if (!p->view.batched) {
      p->update = jobs[first].matrix;
      continue;
    }
    std::vector<torch::Tensor> matrices;
    for (int64_t i = 0; i < p->view.count; ++i) matrices.push_back(jobs[first + i].matrix);
    p->update = torch::stack(matrices);
  }
  for (auto& split : splits) {
    Pending& p = *split.pending;
    const MuonOptions& options = *p.slot->options;
    std::vector<torch::Tensor> blocks;
    for (size_t b = 0; b < p.blocks->size(); ++b) {
      torch::Tensor block = jobs[split.first_job + b].matrix;
      // Moonlight warns that per-block scales make updates too large, so the
      // whole matrix's scale is the default.
      if (options.block_scale()) block = block * block_scale_factor(options.scale_rule(), block, p.view.transposed);
      blocks.push_back(block);  // scatter casts all blocks at once
    }
    if (options.block_scale()) p.scale = 1.0;
    scatter_head_blocks(p.update, *p.slot->tag->heads, *p.blocks, blocks);
  }
}

void check_buffer(const MuonSlot& slot, const char* what, const torch::Tensor& buffer,
                  c10::IntArrayRef expected) {
  if (!buffer.defined()) fail("parameter '{}': Muon state has no {}", slot.name, what);
  if (buffer.sizes() != expected) {
    fail("parameter '{}': Muon state {} has shape {}, expected {}", slot.name, what, shape_string(buffer.sizes()),
         shape_string(expected));
  }
}

// Everything muon_step could refuse, before anything changes.
MatrixView check_slot(const MuonSlot& slot) {
  if (slot.options == nullptr) fail("parameter '{}' has no Muon options", slot.name);
  const MatrixView view = check_muon_param(slot.param, slot.name, *slot.options, slot.tag);
  if (!slot.owned) return view;
  if (slot.grad.sizes() != slot.param.sizes()) {
    fail("parameter '{}' has shape {} but its gradient {}", slot.name, shape_string(slot.param.sizes()),
         shape_string(slot.grad.sizes()));
  }
  if (slot.step < 1) fail("parameter '{}': Muon step = {}, expected the 1-based step being taken", slot.name, slot.step);
  const std::map<std::string, const torch::Tensor*> have{
      {"momentum_buffer", &slot.momentum_buffer},
      {"second_moment", &slot.second_moment.full},
      {"second_moment_row", &slot.second_moment.row},
      {"second_moment_col", &slot.second_moment.col},
      {"neuron_second_moment", &slot.neuron_second_moment}};
  for (const auto& [name, shape] : muon_state_shapes(slot.param, *slot.options, view)) {
    check_buffer(slot, name.c_str(), *have.at(name), shape);
  }
  return view;
}

}  // namespace

MatrixView check_muon_param(const torch::Tensor& param, const std::string& name, const MuonOptions& options,
                            const TaggedParam* tag) {
  check_param_dtype(param, name, "Muon");
  const MatrixView view =
      matrix_view(param, options.nd_params(), name, tag ? tag->role : ParamRole::kMatrix, tag && tag->transposed);
  if (options.group_size() > 0 && tag != nullptr && tag->heads && param.dim() != 2) {
    fail("parameter '{}' has shape {} and a head layout: Group Muon cuts 2-D attention weights only", name,
         shape_string(param.sizes()));
  }
  // Blocks that cannot be cut (a group size that does not divide a grouped
  // segment) are refused here, not by the first step, which would fail
  // after changing the parameters stepped before this one. Every grouping
  // rule cuts the same counts, so the contiguous plan stands for all.
  if (options.group_size() > 0 && tag != nullptr) {
    plan_param_head_blocks(*tag, options.grouped_projections(), options.group_size(), GroupingRule::kContiguous);
  }
  return view;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> muon_state_shapes(const torch::Tensor& param,
                                                                          const MuonOptions& options,
                                                                          const MatrixView& view) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes{{"momentum_buffer", param.sizes().vec()}};
  switch (options.second_moment()) {
    case SecondMomentKind::kNone: break;
    case SecondMomentKind::kFull: shapes.emplace_back("second_moment", param.sizes().vec()); break;
    case SecondMomentKind::kFactored: {
      auto rows = view.shape(), cols = view.shape();
      rows.pop_back();             // [..., r]
      cols.erase(cols.end() - 2);  // [..., c]
      shapes.emplace_back("second_moment_row", rows);
      shapes.emplace_back("second_moment_col", cols);
      break;
    }
  }
  if (options.neuron_norm()) shapes.emplace_back("neuron_second_moment", neuron_state_shape(view.out_in_shape()));
  return shapes;
}

SecondMomentState second_moment_state_for(const torch::Tensor& param, const MuonOptions& options,
                                          const MatrixView& view) {
  const auto sm = options.second_moment_options();
  if (sm.kind == SecondMomentKind::kFactored) {
    // Shapes from the view; dtype and device from the parameter.
    return make_second_moment_state(torch::empty({}, param.options()).expand(view.shape()), sm);
  }
  return make_second_moment_state(param, sm);
}

std::vector<MuonDirection> muon_directions(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator) {
  std::vector<MatrixView> views;
  for (const auto& slot : slots) views.push_back(slot.grad.defined() || !slot.owned ? check_slot(slot) : MatrixView{});

  std::vector<Pending> pending;
  std::vector<size_t> pending_slots;
  for (size_t i = 0; i < slots.size(); ++i) {
    MuonSlot& slot = slots[i];
    if (!slot.grad.defined()) continue;
    // Random grouping's draws, one per grouped slot in slot order, whichever
    // path or rank steps it: every rank's generator stays in step with one
    // process's, and the fused and general paths cut alike.
    std::optional<HeadBlocks> blocks = head_blocks_of(slot, grouping_generator);
    if (!slot.owned) continue;
    const MatrixView& view = views[i];
    const double scale = scale_factor(slot.options->scale_rule(), view.out_features(), view.in_features());
    if (fused_cpu_step_applies(slot, view)) {
      fused_cpu_step(slot, scale, blocks);  // the whole step here; every check above passed
      continue;
    }
    if (!blocks && fused_cpu_stack_step_applies(slot, view)) {
      fused_cpu_stack_step(slot, view, scale);
      continue;
    }
    pending.push_back({&slot, view, torch::Tensor(), scale, std::move(blocks)});
    pending_slots.push_back(i);
  }
  for (const auto& batch : batch_slots(pending)) momentum_and_second_moment(batch, pending);
  orthogonalize(pending);
  std::vector<MuonDirection> directions;
  for (size_t k = 0; k < pending.size(); ++k) {
    Pending& p = pending[k];
    const MuonSlot& slot = *p.slot;
    const MuonOptions& options = *slot.options;
    if (options.neuron_norm()) {  // over output neurons: the columns of a transposed weight
      p.update = p.view.out_in(
          normalize_neurons(p.view.out_in(p.update), p.slot->neuron_second_moment, options.neuron_norm_options()));
    }
    directions.push_back({pending_slots[k], p.update.reshape(slot.param.sizes()).to(slot.param.scalar_type()), p.scale});
  }
  return directions;
}

void apply_muon_directions(std::vector<MuonSlot>& slots, const std::vector<MuonDirection>& directions) {
  // Decoupled weight decay, one multi-tensor op per options and device.
  std::vector<std::pair<std::pair<const MuonOptions*, torch::Device>, std::vector<torch::Tensor>>> decays;
  for (const auto& d : directions) {
    const MuonSlot& slot = slots[d.slot];
    if (slot.options->weight_decay() == 0) continue;
    const std::pair<const MuonOptions*, torch::Device> key{slot.options, slot.param.device()};
    auto group = std::find_if(decays.begin(), decays.end(), [&](const auto& g) { return g.first == key; });
    if (group == decays.end()) group = decays.insert(decays.end(), {key, {}});
    group->second.push_back(slot.param);
  }
  for (auto& [key, params] : decays) {
    const MuonOptions& options = *key.first;
    at::_foreach_mul_(params, 1.0 - options.lr() * options.weight_decay());
  }
  for (const auto& d : directions) {
    MuonSlot& slot = slots[d.slot];
    slot.param.add_(d.direction, -slot.options->lr() * d.scale);
    if (slot.record_update) slot.recorded_update = d.direction * d.scale;
  }
}

void muon_step(std::vector<MuonSlot>& slots, torch::Generator& grouping_generator) {
  apply_muon_directions(slots, muon_directions(slots, grouping_generator));
}

}  // namespace muonlab::optim
