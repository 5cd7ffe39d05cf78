#include "muonlab/optimizers/muon.h"

#include "muonlab/optimizers/muon_step.h"
#include "muonlab/optimizers/muon_step_graph.h"

#include <cmath>
#include <map>

#include <ATen/CPUGeneratorImpl.h>

#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

const EnumNames<MomentumKind>& momentum_kind_names() {
  static const EnumNames<MomentumKind> names{{MomentumKind::kSum, "sum"}, {MomentumKind::kEma, "ema"}};
  return names;
}

MomentumKind parse_momentum_kind(const std::string& name) {
  return parse_enum(momentum_kind_names(), name, "momentum form");
}

std::string to_string(MomentumKind kind) { return enum_name(momentum_kind_names(), kind); }

const EnumNames<NsBatching>& ns_batching_names() {
  static const EnumNames<NsBatching> names{
      {NsBatching::kAuto, "auto"}, {NsBatching::kAlways, "always"}, {NsBatching::kNever, "never"}};
  return names;
}

NsBatching parse_ns_batching(const std::string& name) {
  return parse_enum(ns_batching_names(), name, "NS batching");
}

const EnumNames<ScaleRule>& scale_rule_names() {
  static const EnumNames<ScaleRule> names{{ScaleRule::kOriginal, "original"},
                                          {ScaleRule::kMatchRmsAdamW, "match_rms_adamw"},
                                          {ScaleRule::kSpectral, "spectral"},
                                          {ScaleRule::kNone, "none"}};
  return names;
}

ScaleRule parse_scale_rule(const std::string& name) {
  return parse_enum(scale_rule_names(), name, "Muon scale rule");
}

std::string to_string(ScaleRule rule) { return enum_name(scale_rule_names(), rule); }

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
  config.method = ns_method();
  config.gram_restart = gram_restart();
  return config;
}

SecondMomentOptions MuonOptions::second_moment_options() const {
  SecondMomentOptions options;
  options.kind = second_moment();
  options.beta2 = beta2();
  options.eps = second_moment_eps();
  options.bias_correction = bias_correction();
  return options;
}

NeuronNormOptions MuonOptions::neuron_norm_options() const {
  NeuronNormOptions options;
  options.beta2 = neuron_beta2();
  options.eps = neuron_eps();
  return options;
}

void MuonOptions::validate() const {
  if (!(lr() >= 0 && std::isfinite(lr()))) fail("Muon lr = {}: expected a finite number >= 0", lr());
  if (!(momentum() >= 0 && momentum() < 1)) {
    fail("Muon momentum = {}: expected a number in [0, 1)", momentum());
  }
  if (!(weight_decay() >= 0 && std::isfinite(weight_decay()))) {
    fail("Muon weight_decay = {}: expected a finite number >= 0", weight_decay());
  }
  if (eps() && !(*eps() > 0 && std::isfinite(*eps()))) fail("Muon eps = {}: expected a finite number > 0", *eps());
  if (group_size() < 0) fail("Muon group_size = {}: expected heads per group >= 1, or 0 for whole matrices", group_size());
  newton_schulz_config().validate();
  second_moment_options().validate();
  neuron_norm_options().validate();
}

Muon::Muon(std::vector<torch::optim::OptimizerParamGroup> param_groups, MuonOptions defaults)
    : OptimizerBase(std::move(param_groups), std::make_unique<MuonOptions>(defaults)),
      grouping_generator_(at::make_generator<at::CPUGeneratorImpl>(defaults.grouping_seed())) {
  validate_parameters();
}

Muon::Muon(std::vector<torch::Tensor> params, MuonOptions defaults)
    : Muon(std::vector<torch::optim::OptimizerParamGroup>{
               torch::optim::OptimizerParamGroup(std::move(params))},
           std::move(defaults)) {}

Muon::Muon(const torch::OrderedDict<std::string, torch::Tensor>& named, MuonOptions defaults)
    : OptimizerBase(named.values(), std::make_unique<MuonOptions>(defaults)),
      grouping_generator_(at::make_generator<at::CPUGeneratorImpl>(defaults.grouping_seed())) {
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

}  // namespace

Muon::Muon(const std::vector<TaggedParam>& tagged, MuonOptions defaults)
    : OptimizerBase(muon_tensors_of(tagged), std::make_unique<MuonOptions>(defaults)),
      grouping_generator_(at::make_generator<at::CPUGeneratorImpl>(defaults.grouping_seed())) {
  set_parameter_names(names_of(tagged));
  for (const auto& p : tagged) tags_.emplace(p.tensor.unsafeGetTensorImpl(), p);
  validate_parameters();
}

const TaggedParam* Muon::tag_of(const torch::Tensor& param) const {
  auto it = tags_.find(param.unsafeGetTensorImpl());
  return it == tags_.end() ? nullptr : &it->second;
}

const MuonOptions& Muon::options_of(const torch::Tensor& param) const {
  for (const auto& group : param_groups_) {
    for (const auto& p : group.params()) {
      if (p.is_same(param)) return static_cast<const MuonOptions&>(group.options());
    }
  }
  return static_cast<const MuonOptions&>(*defaults_);
}

void Muon::validate_parameters() const {
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const MuonOptions&>(group.options());
    options.validate();
    for (const auto& p : group.params()) check_muon_param(p, parameter_name(p), options, tag_of(p));
    if (options.group_size() > 0 && tags_.empty()) {
      fail("Group Muon (group_size = {}) needs the parameters' head layouts: build Muon from tagged "
           "parameters (model->tagged_parameters())",
           options.group_size());
    }
  }
}

std::unique_ptr<torch::optim::OptimizerParamState> Muon::make_state(
    const torch::Tensor& param) const {
  auto state = std::make_unique<MuonParamState>();
  state->momentum_buffer(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  const MuonOptions& options = options_of(param);
  const TaggedParam* tag = tag_of(param);
  const MatrixView view = matrix_view(param, options.nd_params(), parameter_name(param),
                                      tag ? tag->role : ParamRole::kMatrix, tag && tag->transposed);
  state->second_moment(second_moment_state_for(param, options, view));
  if (options.neuron_norm()) state->neuron_second_moment(make_neuron_state(param, view.out_in_shape()));
  return state;
}

void Muon::save_kept(torch::serialize::OutputArchive& archive,
                     const std::function<bool(const torch::Tensor&)>& keep) const {
  OptimizerBase::save_kept(archive, keep);
  torch::Generator generator = grouping_generator_;  // a handle: the same generator
  std::lock_guard<std::mutex> lock(generator.mutex());
  archive.write("grouping_generator", generator.get_state(), /*is_buffer=*/true);
}

void Muon::load(torch::serialize::InputArchive& archive) {
  torch::Tensor generator_state;
  const bool has_generator = archive.try_read("grouping_generator", generator_state, /*is_buffer=*/true);
  OptimizerBase::load(archive);  // checks everything before changing anything
  if (has_generator) {
    std::lock_guard<std::mutex> lock(grouping_generator_.mutex());
    grouping_generator_.set_state(generator_state);
  }
}

torch::Tensor Muon::last_update(const torch::Tensor& param) const {
  auto it = last_updates_.find(param.unsafeGetTensorImpl());
  return it == last_updates_.end() ? torch::Tensor() : it->second;
}

void Muon::zero_grad(bool set_to_none) {
  for (auto& group : param_groups_) {
    const bool graphed = static_cast<const MuonOptions&>(group.options()).cuda_graph();
    for (auto& p : group.params()) {
      auto& grad = p.mutable_grad();
      if (!grad.defined()) continue;
      if (set_to_none && !(graphed && p.is_cuda())) {
        grad.reset();
      } else {
        grad.detach_();
        grad.zero_();
      }
    }
  }
}

void Muon::update() {
  std::vector<MuonSlot> slots;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const MuonOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      MuonSlot slot;
      slot.name = parameter_name(p);
      slot.param = p;
      slot.grad = p.grad();
      slot.options = &options;
      slot.tag = tag_of(p);
      slot.owned = owns(p);
      slot.record_update = record_updates_;
      if (slot.owned) {
        auto& state = state_of<MuonParamState>(p);
        slot.step = state.step() + 1;
        slot.momentum_buffer = state.momentum_buffer();
        slot.second_moment = state.second_moment();
        slot.neuron_second_moment = state.neuron_second_moment();
      }
      slots.push_back(std::move(slot));
    }
  }
  muon_step(slots, grouping_generator_, step_graph_);  // checks every slot before it changes anything
  for (auto& slot : slots) {
    if (slot.owned) state_of<MuonParamState>(slot.param).step(slot.step);
  }

  if (record_updates_) last_updates_.clear();
  for (auto& slot : slots) {
    if (slot.owned && record_updates_) last_updates_[slot.param.unsafeGetTensorImpl()] = slot.recorded_update;
  }
}

}  // namespace muonlab::optim
