#include "muonlab/optimizers/muon.h"

#include <cmath>
#include <map>

#include <ATen/CPUGeneratorImpl.h>

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

SecondMomentOptions MuonOptions::second_moment_options() const {
  SecondMomentOptions options;
  options.kind = second_moment();
  options.beta2 = beta2();
  options.eps = second_moment_eps();
  options.bias_correction = bias_correction();
  return options;
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
  if (group_size() < 0) fail("Muon group_size = {}: expected heads per group >= 1, or 0 for whole matrices", group_size());
  newton_schulz_config().validate();
  second_moment_options().validate();
}

// One parameter's step in flight: the parameter, its momentum-mixed update
// (replaced by its orthogonalized form), its group's options, and the lr
// scale s(r, c) (1 when Group Muon scaled each block by its own shape).
struct Muon::PendingUpdate {
  torch::Tensor param;
  torch::Tensor update;
  const MuonOptions* options;
  double scale = 1.0;
  bool owned = true;  // false: another rank steps it (set_ownership); no update here
};

// One matrix for NS: a whole update or one head block of it.
struct Muon::NsJob {
  torch::Tensor matrix;  // replaced by its orthogonalized form
  const MuonOptions* options;
  bool always_batched;  // head blocks: one batched call per shape, as Group Muon promises
};

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

// Bucket key: matrices that can share one batched NS call have the same
// oriented shape (short side, long side), device and NS settings.
std::string bucket_key(const torch::Tensor& update, const MuonOptions& options, size_t index, bool always_batched) {
  const auto config = options.newton_schulz_config();
  std::string key = fmt::format("{}x{}|{}|{}|{}|{}|{}|{}", std::min(update.size(0), update.size(1)),
                                std::max(update.size(0), update.size(1)),
                                update.device().str(), to_string(config.dtype), config.steps,
                                config.schedule.name, config.schedule.norm_scale,
                                config.schedule.eps);
  for (const auto& t : config.schedule.triples) key += fmt::format("|{},{},{}", t.a, t.b, t.c);
  key += options.orthogonalize() ? "|ns" : "|normalized";
  const bool batched = always_batched || options.ns_batching() == NsBatching::kAlways ||
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
    for (const auto& p : group.params()) {
      if (p.dim() != 2) {
        fail("parameter '{}' cannot be optimized by Muon: it has shape {} and Muon takes 2-D "
             "matrices only; give it to AdamW",
             parameter_name(p), shape_string(p.sizes()));
      }
    }
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
  state->second_moment(make_second_moment_state(param, options_of(param).second_moment_options()));
  return state;
}

void Muon::save(torch::serialize::OutputArchive& archive) const {
  OptimizerBase::save(archive);
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

std::optional<HeadBlocks> Muon::head_blocks_of(const PendingUpdate& pending) {
  const MuonOptions& options = *pending.options;
  const TaggedParam* tag = options.group_size() > 0 ? tag_of(pending.param) : nullptr;
  if (tag == nullptr) return std::nullopt;
  return plan_param_head_blocks(*tag, options.grouped_projections(), options.group_size(), options.grouping_rule(),
                                options.grouping_rule() == GroupingRule::kRandom
                                    ? std::optional<torch::Generator>(grouping_generator_)
                                    : std::nullopt);
}

void Muon::orthogonalize_jobs(std::vector<NsJob>& jobs) {
  std::map<std::string, std::vector<NsJob*>> buckets;
  for (size_t i = 0; i < jobs.size(); ++i) {
    buckets[bucket_key(jobs[i].matrix, *jobs[i].options, i, jobs[i].always_batched)].push_back(&jobs[i]);
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
      oriented.push_back((m.size(0) > m.size(1) ? m.t() : m).to(dtype));
    }
    const torch::Tensor stacked = torch::stack(oriented);
    const auto result = options.orthogonalize() ? newton_schulz(stacked, config) : normalized_direction(stacked);
    for (size_t i = 0; i < members.size(); ++i) {
      auto& m = members[i]->matrix;
      const auto o = result[static_cast<int64_t>(i)];
      m = (m.size(0) > m.size(1) ? o.t() : o);
    }
  }
}

void Muon::orthogonalize(std::vector<PendingUpdate>& pending) {
  struct Split {
    PendingUpdate* pending;
    HeadBlocks blocks;
    size_t first_job;
  };
  std::vector<NsJob> jobs;
  std::vector<Split> splits;
  std::vector<std::pair<PendingUpdate*, size_t>> wholes;
  for (auto& p : pending) {
    if (!p.owned) {
      head_blocks_of(p);  // the draws its step would make, so the generator stays in step
      continue;
    }
    if (auto blocks = head_blocks_of(p)) {
      const HeadLayout& layout = *tag_of(p.param)->heads;
      splits.push_back({&p, *blocks, jobs.size()});
      for (auto& block : gather_head_blocks(p.update, layout, *blocks)) jobs.push_back({block, p.options, true});
    } else {
      wholes.emplace_back(&p, jobs.size());
      jobs.push_back({p.update, p.options, false});
    }
  }
  orthogonalize_jobs(jobs);
  for (auto& [p, job] : wholes) p->update = jobs[job].matrix;
  for (auto& split : splits) {
    PendingUpdate& p = *split.pending;
    std::vector<torch::Tensor> blocks;
    for (size_t b = 0; b < split.blocks.size(); ++b) {
      torch::Tensor block = jobs[split.first_job + b].matrix;
      // Moonlight warns that per-block scales make updates too large, so the
      // whole matrix's scale is the default.
      if (p.options->block_scale()) block = block * scale_factor(p.options->scale_rule(), block.size(0), block.size(1));
      blocks.push_back(block.to(p.update.scalar_type()));
    }
    if (p.options->block_scale()) p.scale = 1.0;
    scatter_head_blocks(p.update, *tag_of(p.param)->heads, split.blocks, blocks);
  }
}

void Muon::update() {
  std::vector<PendingUpdate> pending;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const MuonOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (p.dim() != 2) validate_parameters();  // names the parameter
      if (!owns(p)) {
        pending.push_back({p, torch::Tensor(), &options, 1.0, /*owned=*/false});
        continue;
      }
      auto& state = state_of<MuonParamState>(p);
      state.step(state.step() + 1);
      torch::Tensor update = momentum_update(state.momentum_buffer(), p.grad(), options);
      if (options.second_moment() != SecondMomentKind::kNone) {
        update = precondition(update, p.grad(), state.second_moment(), state.step(), options.second_moment_options());
      }
      pending.push_back({p, update, &options, scale_factor(options.scale_rule(), p.size(0), p.size(1))});
    }
  }
  orthogonalize(pending);

  if (record_updates_) last_updates_.clear();
  for (auto& u : pending) {
    if (!u.owned) continue;
    const auto& options = *u.options;
    const double scale = u.scale;
    if (options.weight_decay() != 0) u.param.mul_(1.0 - options.lr() * options.weight_decay());
    u.param.add_(u.update.to(u.param.scalar_type()), -options.lr() * scale);
    if (record_updates_) {
      last_updates_[u.param.unsafeGetTensorImpl()] = u.update.to(u.param.scalar_type()) * scale;
    }
  }
}

}  // namespace muonlab::optim
