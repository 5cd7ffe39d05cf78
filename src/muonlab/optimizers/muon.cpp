#include "muonlab/optimizers/muon.h"

#include <cmath>
#include <map>

#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

MomentumKind parse_momentum_kind(const std::string& name) {
  if (name == "sum") return MomentumKind::kSum;
  if (name == "ema") return MomentumKind::kEma;
  fail("unknown momentum form '{}': expected sum or ema", name);
}

std::string to_string(MomentumKind kind) { return kind == MomentumKind::kSum ? "sum" : "ema"; }

NsBatching parse_ns_batching(const std::string& name) {
  if (name == "auto") return NsBatching::kAuto;
  if (name == "always") return NsBatching::kAlways;
  if (name == "never") return NsBatching::kNever;
  fail("unknown NS batching '{}': expected auto, always or never", name);
}

ScaleRule parse_scale_rule(const std::string& name) {
  if (name == "original") return ScaleRule::kOriginal;
  if (name == "match_rms_adamw") return ScaleRule::kMatchRmsAdamW;
  if (name == "spectral") return ScaleRule::kSpectral;
  if (name == "none") return ScaleRule::kNone;
  fail("unknown Muon scale rule '{}': expected original, match_rms_adamw, spectral or none",
       name);
}

std::string to_string(ScaleRule rule) {
  switch (rule) {
    case ScaleRule::kOriginal: return "original";
    case ScaleRule::kMatchRmsAdamW: return "match_rms_adamw";
    case ScaleRule::kSpectral: return "spectral";
    case ScaleRule::kNone: return "none";
  }
  return "?";
}

double scale_factor(ScaleRule rule, int64_t rows, int64_t cols) {
  const double r = static_cast<double>(rows);
  const double c = static_cast<double>(cols);
  switch (rule) {
    case ScaleRule::kOriginal: return std::sqrt(std::max(1.0, r / c));
    case ScaleRule::kMatchRmsAdamW: return 0.2 * std::sqrt(std::max(r, c));
    case ScaleRule::kSpectral: return std::sqrt(r / c);
    case ScaleRule::kNone: return 1.0;
  }
  return 1.0;
}

NewtonSchulzConfig MuonOptions::newton_schulz_config() const {
  NewtonSchulzConfig config;
  config.schedule = ns_coefficients();
  if (eps()) config.schedule.eps = *eps();
  config.steps = ns_steps();
  config.dtype = ns_dtype();
  return config;
}

void MuonOptions::validate() const {
  if (!(lr() >= 0)) fail("Muon lr = {}: expected a number >= 0", lr());
  if (!(momentum() >= 0 && momentum() < 1)) {
    fail("Muon momentum = {}: expected a number in [0, 1)", momentum());
  }
  if (!(weight_decay() >= 0)) {
    fail("Muon weight_decay = {}: expected a number >= 0", weight_decay());
  }
  if (eps() && !(*eps() > 0)) fail("Muon eps = {}: expected a number > 0", *eps());
  newton_schulz_config().validate();
}

// One parameter's step in flight: the parameter, its momentum-mixed update
// (replaced by its orthogonalized form), and its group's options.
struct Muon::PendingUpdate {
  torch::Tensor param;
  torch::Tensor update;
  const MuonOptions* options;
};

Muon::Muon(std::vector<torch::optim::OptimizerParamGroup> param_groups, MuonOptions defaults)
    : OptimizerBase(std::move(param_groups), std::make_unique<MuonOptions>(defaults)) {
  validate_parameters();
}

Muon::Muon(std::vector<torch::Tensor> params, MuonOptions defaults)
    : Muon(std::vector<torch::optim::OptimizerParamGroup>{
               torch::optim::OptimizerParamGroup(std::move(params))},
           std::move(defaults)) {}

Muon::Muon(const torch::OrderedDict<std::string, torch::Tensor>& named, MuonOptions defaults)
    : OptimizerBase(named.values(), std::make_unique<MuonOptions>(defaults)) {
  set_parameter_names(named);
  validate_parameters();
}

namespace {

// The tensors of `tagged`, after checking that Muon may take each one.
std::vector<torch::Tensor> muon_tensors_of(const std::vector<TaggedParam>& tagged) {
  for (const auto& p : tagged) {
    if (auto why = why_not_muon(p); !why.empty()) {
      fail("parameter '{}' cannot be optimized by Muon: {}", p.name, why);
    }
  }
  return tensors_of(tagged);
}

// Bucket key: matrices that can share one batched NS call have the same
// oriented shape (short side, long side), device and NS settings.
std::string bucket_key(const torch::Tensor& update, const MuonOptions& options, size_t index) {
  const auto config = options.newton_schulz_config();
  std::string key = fmt::format("{}x{}|{}|{}|{}|{}|{}|{}", std::min(update.size(0), update.size(1)),
                                std::max(update.size(0), update.size(1)),
                                update.device().str(), to_string(config.dtype), config.steps,
                                config.schedule.name, config.schedule.norm_scale,
                                config.schedule.eps);
  for (const auto& t : config.schedule.triples) key += fmt::format("|{},{},{}", t.a, t.b, t.c);
  const bool batched = options.ns_batching() == NsBatching::kAlways ||
                       (options.ns_batching() == NsBatching::kAuto && update.is_cuda());
  if (!batched) key += fmt::format("|alone{}", index);
  return key;
}

// U from the gradient and the momentum buffer (updated in place).
torch::Tensor momentum_update(torch::Tensor& buffer, const torch::Tensor& grad,
                              const MuonOptions& options) {
  const double mu = options.momentum();
  if (options.momentum_kind() == MomentumKind::kSum) {
    buffer.mul_(mu).add_(grad);
    return options.nesterov() ? grad.add(buffer, mu) : buffer.clone();
  }
  buffer.lerp_(grad, 1.0 - mu);
  return options.nesterov() ? grad.lerp(buffer, mu) : buffer.clone();
}

}  // namespace

Muon::Muon(const std::vector<TaggedParam>& tagged, MuonOptions defaults)
    : OptimizerBase(muon_tensors_of(tagged), std::make_unique<MuonOptions>(defaults)) {
  set_parameter_names(names_of(tagged));
  validate_parameters();
}

void Muon::validate_parameters() const {
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const MuonOptions&>(group.options());
    options.validate();
    for (const auto& p : group.params()) {
      if (p.dim() != 2) {
        fail("parameter '{}' cannot be optimized by Muon: it has shape {} and Muon takes 2-D "
             "matrices only; give it to AdamW",
             parameter_name(p), shape_string(p.sizes()));
      }
    }
  }
}

std::unique_ptr<torch::optim::OptimizerParamState> Muon::make_state(
    const torch::Tensor& param) const {
  auto state = std::make_unique<MuonParamState>();
  state->momentum_buffer(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  return state;
}

torch::Tensor Muon::last_update(const torch::Tensor& param) const {
  auto it = last_updates_.find(param.unsafeGetTensorImpl());
  return it == last_updates_.end() ? torch::Tensor() : it->second;
}

void Muon::orthogonalize(std::vector<PendingUpdate>& pending) const {
  std::map<std::string, std::vector<PendingUpdate*>> buckets;
  for (size_t i = 0; i < pending.size(); ++i) {
    buckets[bucket_key(pending[i].update, *pending[i].options, i)].push_back(&pending[i]);
  }
  for (auto& [key, members] : buckets) {
    const auto config = members.front()->options->newton_schulz_config();
    const auto dtype = resolve_ns_dtype(config.dtype, members.front()->update.device());
    // Orient every matrix wide so that r x c and c x r share a batch; NS
    // commutes with transposition.
    std::vector<torch::Tensor> oriented;
    for (auto* m : members) {
      const auto& u = m->update;
      oriented.push_back((u.size(0) > u.size(1) ? u.t() : u).to(dtype));
    }
    const auto result = newton_schulz(torch::stack(oriented), config);
    for (size_t i = 0; i < members.size(); ++i) {
      auto& u = members[i]->update;
      const auto o = result[static_cast<int64_t>(i)];
      u = (u.size(0) > u.size(1) ? o.t() : o);
    }
  }
}

void Muon::update() {
  std::vector<PendingUpdate> pending;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const MuonOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (p.dim() != 2) validate_parameters();  // names the parameter
      auto& state = state_of<MuonParamState>(p);
      state.step(state.step() + 1);
      pending.push_back({p, momentum_update(state.momentum_buffer(), p.grad(), options),
                         &options});
    }
  }
  orthogonalize(pending);

  if (record_updates_) last_updates_.clear();
  for (auto& u : pending) {
    const auto& options = *u.options;
    const double scale = scale_factor(options.scale_rule(), u.param.size(0), u.param.size(1));
    if (options.weight_decay() != 0) u.param.mul_(1.0 - options.lr() * options.weight_decay());
    u.param.add_(u.update.to(u.param.scalar_type()), -options.lr() * scale);
    if (record_updates_) {
      last_updates_[u.param.unsafeGetTensorImpl()] = u.update.to(u.param.scalar_type()) * scale;
    }
  }
}

}  // namespace muonlab::optim
