#include "muonlab/optimizers/hybrid.h"

#include "muonlab/core/archive_file.h"

namespace muonlab::optim {

MuonWithAuxAdamW::MuonWithAuxAdamW(const std::vector<TaggedParam>& params,
                                   MuonOptions muon_options, AdamWOptions adamw_options) {
  std::vector<TaggedParam> for_muon;
  std::vector<TaggedParam> for_adamw;
  for (const auto& p : params) {
    const auto choice = route(p);
    routing_.push_back({p.name, p.role, choice});
    (choice == OptimizerChoice::kMuon ? for_muon : for_adamw).push_back(p);
  }
  if (!for_muon.empty()) muon_ = std::make_unique<Muon>(for_muon, muon_options);
  if (!for_adamw.empty()) adamw_ = std::make_unique<AdamW>(for_adamw, adamw_options);
}

MuonWithAuxAdamW::MuonWithAuxAdamW(const torch::OrderedDict<std::string, torch::Tensor>& named,
                                   MuonOptions muon_options, AdamWOptions adamw_options)
    : MuonWithAuxAdamW(tag_parameters(named), std::move(muon_options),
                       std::move(adamw_options)) {}

std::vector<OptimizerBase*> MuonWithAuxAdamW::parts() const {
  std::vector<OptimizerBase*> parts;
  if (muon_) parts.push_back(muon_.get());
  if (adamw_) parts.push_back(adamw_.get());
  return parts;
}

void MuonWithAuxAdamW::set_nonfinite_policy(NonFinitePolicy policy) {
  nonfinite_policy_ = policy;
  for (auto* part : parts()) part->set_nonfinite_policy(policy);
}

torch::Tensor MuonWithAuxAdamW::step(torch::optim::Optimizer::LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  // Check every gradient before either optimizer changes anything.
  if (!check_gradients(parts(), nonfinite_policy_)) {
    ++skipped_steps_;
    return loss;
  }
  for (auto* part : parts()) part->apply_update();
  ++step_count_;
  return loss;
}

void MuonWithAuxAdamW::zero_grad() {
  for (auto* part : parts()) compat::zero_grad(*part);
}

void MuonWithAuxAdamW::save(torch::serialize::OutputArchive& archive) const {
  archive.write("format", c10::IValue(std::string("muonlab.muon_with_aux_adamw.v1")));
  archive.write("step_count", c10::IValue(step_count_));
  archive.write("skipped_steps", c10::IValue(skipped_steps_));
  for (auto* part : parts()) {
    torch::serialize::OutputArchive sub(archive.compilation_unit());
    part->save(sub);
    archive.write(part->kind(), sub);
  }
}

void MuonWithAuxAdamW::load(torch::serialize::InputArchive& archive) {
  // Read both parts aside first: a failure in the second must not leave the
  // first loaded.
  std::vector<std::pair<OptimizerBase*, torch::serialize::InputArchive>> subs;
  for (auto* part : parts()) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(part->kind(), sub)) {
      fail("optimizer state has no '{}' part, but this optimizer routes parameters to {}",
           part->kind(), part->kind());
    }
    subs.emplace_back(part, std::move(sub));
  }
  // Validate by loading into clones is costly; instead load each part, and on
  // failure restore the parts already loaded from a saved copy.
  torch::serialize::OutputArchive backup;
  save(backup);
  std::vector<OptimizerBase*> done;
  try {
    for (auto& [part, sub] : subs) {
      part->load(sub);
      done.push_back(part);
    }
  } catch (...) {
    std::stringstream bytes;
    backup.save_to(bytes);
    torch::serialize::InputArchive restore;
    restore.load_from(bytes);
    for (auto* part : done) {
      torch::serialize::InputArchive sub;
      restore.read(part->kind(), sub);
      part->load(sub);
    }
    throw;
  }
  c10::IValue value;
  archive.read("step_count", value);
  step_count_ = value.toInt();
  archive.read("skipped_steps", value);
  skipped_steps_ = value.toInt();
}

void MuonWithAuxAdamW::save_to_file(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  save(archive);
  save_archive_atomically(archive, path);
}

void MuonWithAuxAdamW::load_from_file(const std::string& path) {
  read_archive_file(path, [&](torch::serialize::InputArchive& archive) { load(archive); });
}

}  // namespace muonlab::optim
