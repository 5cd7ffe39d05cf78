#include "muonlab/optimizers/optimizer_base.h"

#include <algorithm>
#include <map>
#include <set>

#include "muonlab/core/archive_file.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/optimizers/finite_check.h"

namespace muonlab::optim {

namespace {

constexpr const char* kFormat = "muonlab.optimizer_state.v1";

const void* identity(const torch::Tensor& t) { return t.unsafeGetTensorImpl(); }

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key) {
  return read_archive_string(archive, key, "optimizer state");
}

int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key) {
  return read_archive_int(archive, key, "optimizer state");
}

}  // namespace

OptimizerBase::OptimizerBase(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                             std::unique_ptr<torch::optim::OptimizerOptions> defaults)
    : torch::optim::Optimizer(std::vector<torch::optim::OptimizerParamGroup>{}, std::move(defaults)) {
  for (const auto& group : param_groups) add_param_group(group);
}

OptimizerBase::OptimizerBase(std::vector<torch::Tensor> params,
                             std::unique_ptr<torch::optim::OptimizerOptions> defaults)
    : OptimizerBase(std::vector<torch::optim::OptimizerParamGroup>{
                        torch::optim::OptimizerParamGroup(std::move(params))},
                    std::move(defaults)) {}

void OptimizerBase::add_param_group(const torch::optim::OptimizerParamGroup& param_group) {
  torch::optim::Optimizer::add_param_group(param_group);
  if (param_group.has_options()) param_groups_.back().set_options(param_group.options().clone());
}

void OptimizerBase::set_parameter_names(
    const torch::OrderedDict<std::string, torch::Tensor>& named) {
  for (const auto& item : named) names_[identity(item.value())] = item.key();
}

std::string OptimizerBase::parameter_name(const torch::Tensor& param) const {
  if (auto it = names_.find(identity(param)); it != names_.end()) return it->second;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& params = param_groups_[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      if (identity(params[i]) == identity(param)) return fmt::format("group{}.param{}", g, i);
    }
  }
  return "<parameter not in this optimizer>";
}

std::vector<torch::Tensor> OptimizerBase::all_parameters() const {
  std::vector<torch::Tensor> params;
  for (const auto& group : param_groups_) {
    params.insert(params.end(), group.params().begin(), group.params().end());
  }
  return params;
}

bool OptimizerBase::has_state(const torch::Tensor& param) const {
  return state_.count(compat::optimizer_state_key(param)) > 0;
}

VisitableParamState& OptimizerBase::visitable_state(const torch::Tensor& param) {
  auto key = compat::optimizer_state_key(param);
  auto it = state_.find(key);
  if (it == state_.end()) it = state_.emplace(std::move(key), make_state(param)).first;
  auto* visitable = dynamic_cast<VisitableParamState*>(it->second.get());
  TORCH_CHECK(visitable, "optimizer state of ", parameter_name(param), " cannot be visited");
  return *visitable;
}

void OptimizerBase::drop_state(const torch::Tensor& param) { state_.erase(compat::optimizer_state_key(param)); }

std::unique_ptr<torch::optim::OptimizerParamState> OptimizerBase::release_state(const torch::Tensor& param) {
  auto it = state_.find(compat::optimizer_state_key(param));
  if (it == state_.end()) return nullptr;
  auto released = std::move(it->second);
  state_.erase(it);
  return released;
}

void OptimizerBase::adopt_state(const torch::Tensor& param, std::unique_ptr<torch::optim::OptimizerParamState> state) {
  state_[compat::optimizer_state_key(param)] = std::move(state);
}

torch::Tensor OptimizerBase::first_nonfinite_gradient() const {
  const auto parameters = all_parameters();
  std::vector<torch::Tensor> gradients;
  gradients.reserve(parameters.size());
  for (const auto& p : parameters) gradients.push_back(p.grad());
  const auto bad = first_nonfinite(gradients);
  return bad ? parameters[*bad] : torch::Tensor();
}

torch::Tensor OptimizerBase::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  steps_.step({this}, [this] { apply_update(); });
  return loss;
}

void OptimizerBase::apply_update() {
  torch::NoGradGuard no_grad;
  update();
}

void OptimizerBase::save(torch::serialize::OutputArchive& archive) const { save_kept(archive, nullptr); }

void OptimizerBase::save_kept(torch::serialize::OutputArchive& archive,
                              const std::function<bool(const torch::Tensor&)>& keep) const {
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("optimizer", c10::IValue(kind()));
  steps_.save(archive);
  const auto params = all_parameters();
  archive.write("num_params", c10::IValue(static_cast<int64_t>(params.size())));
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    torch::serialize::OutputArchive entry(archive.compilation_unit());
    entry.write("name", c10::IValue(parameter_name(p)));
    entry.write("shape", torch::tensor(p.sizes().vec(), torch::kInt64), /*is_buffer=*/true);
    auto it = state_.find(compat::optimizer_state_key(p));
    const bool has_state = it != state_.end() && (!keep || keep(p));
    entry.write("has_state", c10::IValue(has_state));
    if (has_state) {
      auto* visitable = dynamic_cast<VisitableParamState*>(it->second.get());
      TORCH_CHECK(visitable, "optimizer state of ", parameter_name(p), " is not saveable");
      write_param_state(*visitable, entry);
    }
    archive.write("param" + std::to_string(i), entry);
  }
}

namespace {

std::vector<int64_t> saved_shape(torch::serialize::InputArchive& entry) {
  torch::Tensor shape;
  entry.read("shape", shape, /*is_buffer=*/true);
  return std::vector<int64_t>(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + shape.numel());
}

bool saved_with_state(torch::serialize::InputArchive& entry) {
  c10::IValue has_state;
  entry.read("has_state", has_state);
  return has_state.toBool();
}

VisitableParamState& loadable(torch::optim::OptimizerParamState& state, const std::string& name) {
  auto* visitable = dynamic_cast<VisitableParamState*>(&state);
  TORCH_CHECK(visitable, "optimizer state of ", name, " is not loadable");
  return *visitable;
}

}  // namespace

std::map<std::string, std::vector<std::string>> OptimizerBase::saved_slices(
    const std::vector<torch::Tensor>& params, const SavedEntries& saved) const {
  std::map<std::string, std::vector<std::string>> sliced;
  if (!slice_names_) return sliced;
  for (const auto& p : params) {
    const auto name = parameter_name(p);
    if (saved.count(name) || p.dim() == 0) continue;
    auto names = slice_names_(name, p.size(0));
    const bool any_saved = std::any_of(names.begin(), names.end(), [&](const auto& n) { return saved.count(n) > 0; });
    if (any_saved) sliced.emplace(name, std::move(names));
  }
  return sliced;
}

std::unique_ptr<torch::optim::OptimizerParamState> OptimizerBase::load_state(const torch::Tensor& p,
                                                                             SavedEntries& saved) const {
  const auto name = parameter_name(p);
  auto it = saved.find(name);
  if (it == saved.end()) fail("optimizer state has no entry for parameter '{}'", name);
  auto& entry = it->second;
  const auto shape = saved_shape(entry);
  if (c10::IntArrayRef(shape) != p.sizes()) {
    fail("optimizer state of parameter '{}' was saved for shape {}, but the parameter has "
         "shape {}",
         name, shape_string(shape), shape_string(p.sizes()));
  }
  if (!saved_with_state(entry)) return nullptr;
  auto fresh = make_state(p);
  read_param_state(loadable(*fresh, name), entry, name);
  return fresh;
}

std::unique_ptr<torch::optim::OptimizerParamState> OptimizerBase::load_sliced_state(
    const torch::Tensor& p, const std::vector<std::string>& slice_names, SavedEntries& saved) const {
  const auto name = parameter_name(p);
  const auto slice_shape = p.sizes().slice(1);
  std::vector<torch::serialize::InputArchive*> slices;
  size_t with_state = 0;
  for (const auto& slice : slice_names) {
    auto it = saved.find(slice);
    if (it == saved.end()) {
      fail("optimizer state has no entry for parameter '{}', nor for every one of its slices: '{}' is missing", name,
           slice);
    }
    const auto shape = saved_shape(it->second);
    if (c10::IntArrayRef(shape) != slice_shape) {
      fail("optimizer state of '{}' (slice {} of parameter '{}') was saved for shape {}, but the slice has shape {}",
           slice, slices.size(), name, shape_string(shape), shape_string(slice_shape));
    }
    const bool with = saved_with_state(it->second);
    with_state += with ? 1 : 0;
    slices.push_back(with ? &it->second : nullptr);
  }
  // A slice without state never stepped (or, in one rank's file, is
  // another's: merging two files that both hold part of a stack is refused
  // like any state two files hold, MuonWithAuxAdamW::load_from_shards).
  if (with_state == 0) return nullptr;
  auto fresh = make_state(p);
  read_sliced_param_state(loadable(*fresh, name), slices, slice_names, name);
  return fresh;
}

void OptimizerBase::load(torch::serialize::InputArchive& archive) {
  if (read_string(archive, "format") != kFormat) {
    fail("optimizer state has format '{}', expected '{}'", read_string(archive, "format"),
         kFormat);
  }
  const auto saved_kind = read_string(archive, "optimizer");
  if (saved_kind != kind()) {
    fail("optimizer state was saved by '{}' and cannot be loaded into '{}'", saved_kind, kind());
  }

  // Index the saved entries by name.
  SavedEntries saved;
  const auto count = read_int(archive, "num_params");
  for (int64_t i = 0; i < count; ++i) {
    torch::serialize::InputArchive entry;
    if (!archive.try_read("param" + std::to_string(i), entry)) {
      fail("optimizer state is truncated: entry {} of {} is missing", i, count);
    }
    saved.emplace(read_string(entry, "name"), std::move(entry));
  }

  const auto params = all_parameters();
  const auto sliced = saved_slices(params, saved);
  std::set<std::string> ours;
  for (const auto& p : params) ours.insert(parameter_name(p));
  for (const auto& [name, slices] : sliced) ours.insert(slices.begin(), slices.end());
  for (const auto& [name, entry] : saved) {
    if (!ours.count(name)) {
      fail("optimizer state holds parameter '{}', which this {} optimizer does not have",
           name, kind());
    }
  }

  // Build the new state aside and swap it in only when all of it is valid.
  decltype(state_) loaded;
  for (const auto& p : params) {
    const auto name = parameter_name(p);
    auto state = sliced.count(name) ? load_sliced_state(p, sliced.at(name), saved) : load_state(p, saved);
    if (state) loaded.emplace(compat::optimizer_state_key(p), std::move(state));
  }
  StepGuard counts = steps_;
  counts.load(archive);
  state_ = std::move(loaded);
  steps_ = counts;
}

}  // namespace muonlab::optim
