// Muon: momentum, then Newton-Schulz orthogonalization, then a shape-scaled
// step (REFERENCE.md section 2), as a torch::optim optimizer for hidden 2-D
// matrices. Parameters of the same shape (up to transposition) and the same
// Newton-Schulz settings are orthogonalized together in one batched call.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "muonlab/optimizers/newton_schulz.h"
#include "muonlab/optimizers/optimizer_base.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::optim {

// 'sum': B = mu B + G.  'ema': B = mu B + (1 - mu) G (torch.optim.Muon's and
// Keller Jordan's form). They differ by a scale that NS removes.
enum class MomentumKind { kSum, kEma };
MomentumKind parse_momentum_kind(const std::string& name);  // "sum", "ema"
std::string to_string(MomentumKind kind);

// s(r, c) multiplying the learning rate for an r x c (out x in) matrix.
enum class ScaleRule {
  kOriginal,       // sqrt(max(1, r / c))   Keller Jordan's Muon
  kMatchRmsAdamW,  // 0.2 sqrt(max(r, c))   Moonlight, torch.optim.Muon
  kSpectral,       // sqrt(r / c)
  kNone,           // 1
};
ScaleRule parse_scale_rule(const std::string& name);  // "original", "match_rms_adamw", ...
std::string to_string(ScaleRule rule);
double scale_factor(ScaleRule rule, int64_t rows, int64_t cols);

// Whether same-shaped matrices share one batched NS call. Batching saves
// kernel launches on GPUs; on CPU LibTorch's bmm loops over GEMMs anyway and
// the stacking copies cost 5-20% (docs/benchmarks.md), so kAuto batches on
// CUDA only. kNever is the per-parameter loop of the Python implementations.
enum class NsBatching { kAuto, kAlways, kNever };
NsBatching parse_ns_batching(const std::string& name);  // "auto", "always", "never"

// Defaults follow torch.optim.Muon (lr 1e-3, weight decay 0.1, momentum 0.95,
// Nesterov, 5 steps of 'jordan', 'original' scale) with the 'ema' momentum
// form that it and Keller Jordan's implementation use.
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

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }

  NewtonSchulzConfig newton_schulz_config() const;
  // Throws muonlab::Error naming the first invalid field.
  void validate() const;
};

struct MuonParamState : public torch::optim::OptimizerCloneableParamState<MuonParamState>,
                        public VisitableParamState {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, momentum_buffer);

 public:
  void visit(ParamStateVisitor& visitor) override {
    visitor.integer("step", step_);
    visitor.tensor("momentum_buffer", momentum_buffer_);
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

 protected:
  void update() override;
  std::unique_ptr<torch::optim::OptimizerParamState> make_state(
      const torch::Tensor& param) const override;

 private:
  struct PendingUpdate;
  void validate_parameters() const;
  void orthogonalize(std::vector<PendingUpdate>& pending) const;

  bool record_updates_ = false;
  std::unordered_map<const void*, torch::Tensor> last_updates_;
};

}  // namespace muonlab::optim
