#include "muonlab/optimizers/hybrid.h"

#include "muonlab/core/archive_file.h"
#include "muonlab/core/errors.h"

namespace muonlab::optim {

namespace {

constexpr const char* kHybridFormat = "muonlab.muon_with_aux_adamw.v1";

}  // namespace

MuonWithAuxAdamW::MuonWithAuxAdamW(const std::vector<TaggedParam>& params,
                                   std::optional<MuonOptions> muon_options, AdamWOptions adamw_options) {
  std::vector<TaggedParam> for_muon;
  std::vector<TaggedParam> for_adamw;
  for (const auto& p : params) {
    const auto choice = muon_options ? route(p) : OptimizerChoice::kAdamW;
    routing_.push_back({p.name, p.role, choice});
    (choice == OptimizerChoice::kMuon ? for_muon : for_adamw).push_back(p);
  }
  if (!for_muon.empty()) muon_ = std::make_unique<Muon>(for_muon, *muon_options);
  if (!for_adamw.empty()) adamw_ = std::make_unique<AdamW>(for_adamw, adamw_options);
}

MuonWithAuxAdamW::MuonWithAuxAdamW(const std::vector<TaggedParam>& params, MuonOptions muon_options,
                                   AdamWOptions adamw_options)
    : MuonWithAuxAdamW(params, std::optional<MuonOptions>(std::move(muon_options)), std::move(adamw_options)) {}

MuonWithAuxAdamW::MuonWithAuxAdamW(const torch::OrderedDict<std::string, torch::Tensor>& named,
                                   MuonOptions muon_options, AdamWOptions adamw_options)
    : MuonWithAuxAdamW(tag_parameters(named), std::move(muon_options), std::move(adamw_options)) {}

MuonWithAuxAdamW MuonWithAuxAdamW::all_adamw(const std::vector<TaggedParam>& params, AdamWOptions adamw_options) {
  return MuonWithAuxAdamW(params, std::nullopt, std::move(adamw_options));
}

std::vector<OptimizerBase*> MuonWithAuxAdamW::parts() const {
  std::vector<OptimizerBase*> parts;
  if (muon_) parts.push_back(muon_.get());
  if (adamw_) parts.push_back(adamw_.get());
  return parts;
}

torch::Tensor MuonWithAuxAdamW::step(torch::optim::Optimizer::LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  const auto all = parts();
  steps_.step(std::vector<const OptimizerBase*>(all.begin(), all.end()), [&] {
    for (auto* part : all) part->apply_update();
  });
  return loss;
}

void MuonWithAuxAdamW::step_known_finite() {
  steps_.step_known_finite([this] {
    for (auto* part : parts()) part->apply_update();
  });
}

void MuonWithAuxAdamW::zero_grad() {
  if (muon_) muon_->zero_grad();  // keeps what its CUDA graph replays from
  if (adamw_) compat::zero_grad(*adamw_);  // freed: the memory serves the forward pass meanwhile
}

void MuonWithAuxAdamW::save(torch::serialize::OutputArchive& archive) const { save_parts(archive, nullptr); }

void MuonWithAuxAdamW::save_parts(torch::serialize::OutputArchive& archive,
                                  const std::function<bool(const OptimizerBase&, const torch::Tensor&)>& keep) const {
  archive.write("format", c10::IValue(std::string(kHybridFormat)));
  steps_.save(archive);
  for (auto* part : parts()) {
    torch::serialize::OutputArchive sub(archive.compilation_unit());
    if (keep) {
      part->save_kept(sub, [&](const torch::Tensor& p) { return keep(*part, p); });
    } else {
      part->save(sub);
    }
    archive.write(part->kind(), sub);
  }
}

void MuonWithAuxAdamW::save_shard_to_file(const std::string& path, int64_t rank) const {
  torch::serialize::OutputArchive archive;
  save_parts(archive, [rank](const OptimizerBase& part, const torch::Tensor& p) {
    return part.sharded() ? part.owns(p) : rank == 0;
  });
  save_archive_atomically(archive, path);
}

void MuonWithAuxAdamW::load_from_shards(const std::vector<std::string>& paths) {
  if (paths.empty()) fail("no optimizer state files to merge");
  torch::serialize::OutputArchive backup;
  save(backup);
  const auto all = parts();
  // merged[k][i]: the state of part k's i-th parameter (where this rank owns
  // it), and source[k][i] the file it came from.
  std::vector<std::vector<std::unique_ptr<torch::optim::OptimizerParamState>>> merged(all.size());
  std::vector<std::vector<std::string>> source(all.size());
  for (size_t k = 0; k < all.size(); ++k) {
    merged[k].resize(all[k]->all_parameters().size());
    source[k].resize(merged[k].size());
  }
  std::pair<int64_t, int64_t> first_counts;  // applied and skipped steps of the first file
  try {
    for (size_t f = 0; f < paths.size(); ++f) {
      load_from_file(paths[f]);
      if (f == 0) {
        first_counts = {step_count(), skipped_steps()};
      } else if (std::make_pair(step_count(), skipped_steps()) != first_counts) {
        fail("'{}' was written after {} steps ({} skipped) but '{}' after {} ({} skipped): they are not the files of "
             "one checkpoint",
             paths.front(), first_counts.first, first_counts.second, paths[f], step_count(), skipped_steps());
      }
      for (size_t k = 0; k < all.size(); ++k) {
        const auto params = all[k]->all_parameters();
        for (size_t i = 0; i < params.size(); ++i) {
          auto state = all[k]->release_state(params[i]);
          if (!state) continue;
          if (!source[k][i].empty()) {
            fail("'{}' and '{}' both hold the {} state of '{}': the files of one checkpoint divide the parameters "
                 "between them",
                 source[k][i], paths[f], all[k]->kind(), all[k]->parameter_name(params[i]));
          }
          source[k][i] = paths[f];
          // A sharded part keeps only this rank's share: no rank holds the whole state, even while loading.
          if (all[k]->owns(params[i])) merged[k][i] = std::move(state);
        }
      }
    }
  } catch (...) {
    std::stringstream bytes;
    backup.save_to(bytes);
    torch::serialize::InputArchive restore;
    restore.load_from(bytes);
    load(restore);
    throw;
  }
  for (size_t k = 0; k < all.size(); ++k) {
    const auto params = all[k]->all_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (merged[k][i]) all[k]->adopt_state(params[i], std::move(merged[k][i]));
    }
  }
}

void MuonWithAuxAdamW::load(torch::serialize::InputArchive& archive) {
  StepGuard counts = steps_;
  counts.load(archive);
  const auto format = read_archive_string(archive, "format", "optimizer state");
  const auto all = parts();
  if (format != kHybridFormat && all.size() == 1) {
    // A single optimizer's own state file (an AdamW run before AdamW runs
    // were routed through this class): its part, whole.
    all.front()->load(archive);
  } else if (format == kHybridFormat) {
    load_parts(archive);
  } else {
    fail("optimizer state has format '{}', expected '{}'", format, kHybridFormat);
  }
  steps_ = counts;
}

void MuonWithAuxAdamW::load_parts(torch::serialize::InputArchive& archive) {
  // Read every part aside first: a failure in the second must not leave the
  // first loaded.
  std::vector<std::pair<OptimizerBase*, torch::serialize::InputArchive>> subs;
  for (auto* part : parts()) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(part->kind(), sub)) {
      fail("optimizer state has no '{}' part, but this optimizer routes parameters to {}", part->kind(),
           part->kind());
    }
    subs.emplace_back(part, std::move(sub));
  }
  // Each part validates before it changes anything; a part refused after
  // another was loaded puts that one back from a saved copy.
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
}

}  // namespace muonlab::optim
