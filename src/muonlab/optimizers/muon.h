// Muon: momentum, then Newton-Schulz orthogonalization, then a shape-scaled
// step (docs/design.md, Optimizers), as a torch::optim optimizer for hidden
// matrices (conv kernels and stacks of expert matrices too: matrix_view.h).
// Parameters of the same shape (up to transposition) and the same
// Newton-Schulz settings are orthogonalized together in one batched call.
// The step itself is muon_step() (muon_step.h), over this optimizer's state.
//
// The papers' variants are options of the same optimizer, so they compose:
//   Muon² / Muon²-F   second_moment = kFull / kFactored: Adam's second
//                     moment of the gradient divides the momentum before NS
//                     (docs/algorithms.md, Muon² and Muon²-F;
//                     second_moment.h)
//   Group Muon        group_size = g: attention projections orthogonalized
//                     per block of g heads (docs/algorithms.md, Group
//                     Muon; head_groups.h); all blocks of one shape, over
//                     all layers, in one batched NS call
//   NorMuon           neuron_norm = true: each output neuron's row of the
//                     orthogonalized update normalized by an EMA of its
//                     mean square, the norm restored (docs/algorithms.md,
//                     NorMuon; neuron_norm.h)
//   ablations         orthogonalize = false (normalized momentum), any K,
//                     'taylor' coefficients, scale_rule (no RMS matching)
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "muonlab/core/enum_names.h"
#include "muonlab/optimizers/head_groups.h"
#include "muonlab/optimizers/matrix_view.h"
#include "muonlab/optimizers/neuron_norm.h"
#include "muonlab/optimizers/newton_schulz.h"
#include "muonlab/optimizers/optimizer_base.h"
#include "muonlab/optimizers/param_role.h"
#include "muonlab/optimizers/second_moment.h"

namespace muonlab::optim {

// 'sum': B = mu B + G.  'ema': B = mu B + (1 - mu) G (torch.optim.Muon's and
// Keller Jordan's form). They differ by a scale that NS removes.
enum class MomentumKind { kSum, kEma };
const EnumNames<MomentumKind>& momentum_kind_names();  // "sum", "ema"
MomentumKind parse_momentum_kind(const std::string& name);
std::string to_string(MomentumKind kind);

// s(r, c) multiplying the learning rate for an r x c (out x in) matrix.
enum class ScaleRule {
  kOriginal,       // sqrt(max(1, r / c))   Keller Jordan's Muon
  kMatchRmsAdamW,  // 0.2 sqrt(max(r, c))   Moonlight, torch.optim.Muon
  kSpectral,       // sqrt(r / c)
  kNone,           // 1
};
const EnumNames<ScaleRule>& scale_rule_names();  // "original", "match_rms_adamw", "spectral", "none"
ScaleRule parse_scale_rule(const std::string& name);
std::string to_string(ScaleRule rule);
double scale_factor(ScaleRule rule, int64_t rows, int64_t cols);

// Whether same-shaped matrices share one batched NS call. Batching saves
// kernel launches on GPUs; on CPU LibTorch's bmm loops over GEMMs anyway and
// the stacking copies cost 5-20% (docs/benchmarks.md), so kAuto batches on
// CUDA only. kNever is the per-parameter loop of the Python implementations.
enum class NsBatching { kAuto, kAlways, kNever };
const EnumNames<NsBatching>& ns_batching_names();  // "auto", "always", "never"
NsBatching parse_ns_batching(const std::string& name);

// Defaults follow torch.optim.Muon (lr 1e-3, weight decay 0.1, momentum 0.95,
// Nesterov, 5 steps of 'jordan', 'original' scale) with the 'ema' momentum
// form that it and Keller Jordan's implementation use.
class MuonStepGraph;

struct MuonOptions : public torch::optim::OptimizerCloneableOptions<MuonOptions> {
  MuonOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit as in torch::optim
  TORCH_ARG(double, lr);
  TORCH_ARG(double, momentum) = 0.95;
  TORCH_ARG(MomentumKind, momentum_kind) = MomentumKind::kEma;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(int64_t, ns_steps) = 5;
  TORCH_ARG(NsSchedule, ns_coefficients) = ns_schedule("jordan");
  TORCH_ARG(NsDtype, ns_dtype) = NsDtype::kAuto;
  TORCH_ARG(ScaleRule, scale_rule) = ScaleRule::kOriginal;
  TORCH_ARG(double, weight_decay) = 0.1;
  // Normalization eps of NS; unset means the coefficient preset's own
  // (1e-7, and 1e-6 for polar_express).
  TORCH_ARG(std::optional<double>, eps) = std::nullopt;
  TORCH_ARG(NsBatching, ns_batching) = NsBatching::kAuto;
  // kGram: Gram Newton-Schulz where it saves FLOPs (newton_schulz.h),
  // restarted every gram_restart steps.
  TORCH_ARG(NsMethod, ns_method) = NsMethod::kStandard;
  TORCH_ARG(int64_t, gram_restart) = 2;
  // Muon² (kFull) and Muon²-F (kFactored); the papers pair them with
  // ns_steps = 3.
  TORCH_ARG(SecondMomentKind, second_moment) = SecondMomentKind::kNone;
  TORCH_ARG(double, beta2) = 0.95;
  TORCH_ARG(double, second_moment_eps) = 1e-8;
  TORCH_ARG(bool, bias_correction) = true;
  // NorMuon: the second moment after NS, per output neuron (row).
  TORCH_ARG(bool, neuron_norm) = false;
  TORCH_ARG(double, neuron_beta2) = 0.95;
  TORCH_ARG(double, neuron_eps) = 1e-8;
  // Ablation: false replaces NS_K(U) by U sqrt(min(r, c)) / ||U||_F, an
  // update of an orthogonal matrix's size and the momentum's direction.
  TORCH_ARG(bool, orthogonalize) = true;
  // CPU: momentum, the cast to the NS dtype and the norm in one pass, weight
  // decay and the update in another, for the matrices that qualify
  // (fused_muon_cpu.h); false: LibTorch's ops one by one. The same values up
  // to rounding; no effect on CUDA tensors.
  TORCH_ARG(bool, fused) = true;
  // CUDA: replay the step's work before the learning rate (momentum, NS)
  // from a CUDA graph, one launch instead of hundreds, where the parameters
  // and options allow it (muon_step_graph.h); the same arithmetic. Needs a
  // build against PyTorch's CUDA LibTorch; no effect on CPU tensors.
  TORCH_ARG(bool, cuda_graph) = false;
  // Parameters of more than two dimensions (matrix_view.h): conv kernels
  // flattened to out x (in*kh*kw), stacks of expert weights [E, r, c] as E
  // matrices, or refused.
  TORCH_ARG(NdParams, nd_params) = NdParams::kAuto;
  // Group Muon: heads per block (0: whole matrices), how heads are grouped,
  // which projections, and whether the lr scale comes from the block's shape
  // instead of the whole matrix's (the paper's default). Random grouping
  // draws from the optimizer's generator, seeded with grouping_seed and kept
  // in its state file.
  TORCH_ARG(int64_t, group_size) = 0;
  TORCH_ARG(GroupingRule, grouping_rule) = GroupingRule::kContiguous;
  TORCH_ARG(GroupedProjections, grouped_projections) = GroupedProjections{true, true, true, true, false};
  TORCH_ARG(bool, block_scale) = false;
  TORCH_ARG(uint64_t, grouping_seed) = 0;

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }

  NewtonSchulzConfig newton_schulz_config() const;
  SecondMomentOptions second_moment_options() const;
  NeuronNormOptions neuron_norm_options() const;
  // Throws muonlab::Error naming the first invalid field.
  void validate() const;
};

struct MuonParamState : public torch::optim::OptimizerCloneableParamState<MuonParamState>,
                        public VisitableParamState {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, momentum_buffer);
  TORCH_ARG(SecondMomentState, second_moment);  // Muon² and Muon²-F only
  TORCH_ARG(torch::Tensor, neuron_second_moment);  // NorMuon only

 public:
  void visit(ParamStateVisitor& visitor) override {
    visitor.integer("step", step_);
    visitor.tensor("momentum_buffer", momentum_buffer_);
    visit_second_moment_state(second_moment_, visitor);
    if (neuron_second_moment_.defined()) visitor.tensor("neuron_second_moment", neuron_second_moment_);
  }
};

class Muon : public OptimizerBase {
 public:
  explicit Muon(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                MuonOptions defaults = {});
  explicit Muon(std::vector<torch::Tensor> params, MuonOptions defaults = {});
  // Named (module->named_parameters()): names appear in errors and state files.
  Muon(const torch::OrderedDict<std::string, torch::Tensor>& named, MuonOptions defaults = {});
  // Role-tagged: a parameter whose role Muon must not take, or that is
  // marked exclude_from_muon, is rejected by name.
  Muon(const std::vector<TaggedParam>& tagged, MuonOptions defaults = {});

  std::string kind() const override { return "muon"; }

  // The update direction of the last step for `param` (after NS and scale,
  // before the learning rate), kept only when record_updates(true).
  void record_updates(bool on) { record_updates_ = on; }
  torch::Tensor last_update(const torch::Tensor& param) const;

  // The role and head layout Muon was given for `param` (tagged
  // constructor only), or nullptr.
  const TaggedParam* tag_of(const torch::Tensor& param) const;

  // Ownership (OptimizerBase::set_ownership): parameters this rank does not
  // own take no step here but still advance random grouping's generator as
  // their step would, so every rank draws the permutations one process draws.

  // Also the random-grouping generator's state (in every rank's file).
  void save_kept(torch::serialize::OutputArchive& archive,
                 const std::function<bool(const torch::Tensor&)>& keep) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Frees the gradients, as torch's zero_grad() does by default from 2.0
  // on, except those a CUDA graph replays from (MuonOptions::cuda_graph, on
  // a GPU): they are zeroed in place, so backward accumulates into the
  // memory the graph captured and its replays read this step's gradients.
  // set_to_none = false zeroes every gradient in place. Hides the base
  // class's zero_grad, which is not virtual: call it on a Muon.
  void zero_grad(bool set_to_none = true);

  // The CUDA graph steps go through (MuonOptions::cuda_graph), or null
  // before the first such step.
  const MuonStepGraph* step_graph() const { return step_graph_.get(); }

 protected:
  void update() override;
  std::unique_ptr<torch::optim::OptimizerParamState> make_state(
      const torch::Tensor& param) const override;

 private:
  void validate_parameters() const;
  const MuonOptions& options_of(const torch::Tensor& param) const;

  bool record_updates_ = false;
  std::unordered_map<const void*, torch::Tensor> last_updates_;
  std::unordered_map<const void*, TaggedParam> tags_;
  torch::Generator grouping_generator_;
  std::shared_ptr<MuonStepGraph> step_graph_;  // shared_ptr: the type is complete only in muon.cpp
};

}  // namespace muonlab::optim
