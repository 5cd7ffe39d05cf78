// Weights in the layout muonlab wrote before it stacked a MoE layer's routed
// experts ("h.0.moe.expert_3.w1.weight", one [out, in] tensor per expert)
// still load: the rewrite onto the stacked "h.0.moe.experts.w1.weight"
// [E, out, in] against torch::stack, a gap or a shape mismatch named, a
// checkpoint's weights loaded into today's model (same outputs), and a run
// of the old layout resumed: its per-expert optimizer state stacked, the
// next step where the old layout's would have gone.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "data/data_test_util.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/models/stacked_expert_names.h"
#include "muonlab/optimizers/hybrid.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/train_optimizer.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

using models::NamedTensors;

TEST(PerExpertWeights, StackedInExpertOrderWhereTheFirstStood) {
  const auto e0 = torch::randn({3, 4}), e1 = torch::randn({3, 4}), e2 = torch::randn({3, 4});
  const auto bias0 = torch::randn({3}), bias1 = torch::randn({3}), bias2 = torch::randn({3});
  const auto router = torch::randn({3, 4});
  NamedTensors tensors{{"h.0.moe.router.weight", router},   {"h.0.moe.expert_1.w1.weight", e1},
                       {"h.0.moe.expert_0.w1.weight", e0},  {"h.0.moe.expert_2.w1.weight", e2},
                       {"h.0.moe.expert_0.w1.bias", bias0}, {"h.0.moe.expert_1.w1.bias", bias1},
                       {"h.0.moe.expert_2.w1.bias", bias2}, {"lm_head.weight", router}};
  EXPECT_EQ(models::stack_per_expert_tensors(tensors, "'x'"), 6);
  ASSERT_EQ(tensors.size(), 4u);
  EXPECT_EQ(tensors[0].first, "h.0.moe.router.weight");
  EXPECT_EQ(tensors[1].first, "h.0.moe.experts.w1.weight");
  EXPECT_TRUE(torch::equal(tensors[1].second, torch::stack({e0, e1, e2})));
  EXPECT_EQ(tensors[2].first, "h.0.moe.experts.w1.bias");
  EXPECT_TRUE(torch::equal(tensors[2].second, torch::stack({bias0, bias1, bias2})));
  EXPECT_EQ(tensors[3].first, "lm_head.weight");
}

TEST(PerExpertWeights, TodaysLayoutIsLeftAlone) {
  const auto stacked = torch::randn({2, 3, 4});
  NamedTensors tensors{{"h.0.moe.experts.w1.weight", stacked}, {"h.0.moe.shared_0.w1.weight", torch::randn({3, 4})}};
  EXPECT_EQ(models::stack_per_expert_tensors(tensors, "'x'"), 0);
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].first, "h.0.moe.experts.w1.weight");
  EXPECT_TRUE(torch::equal(tensors[0].second, stacked));
}

TEST(PerExpertWeights, AGapOrAShapeMismatchIsNamed) {
  NamedTensors gap{{"h.1.moe.expert_0.w2.weight", torch::zeros({3, 4})},
                   {"h.1.moe.expert_2.w2.weight", torch::zeros({3, 4})}};
  const auto gap_error = testing::error_message([&] { models::stack_per_expert_tensors(gap, "'old.safetensors'"); });
  EXPECT_CONTAINS(gap_error, "'old.safetensors' holds h.1.moe.expert_2.w2.weight but not h.1.moe.expert_1.w2.weight");
  NamedTensors shapes{{"h.1.moe.expert_0.w2.weight", torch::zeros({3, 4})},
                      {"h.1.moe.expert_1.w2.weight", torch::zeros({4, 3})}};
  const auto shape_error =
      testing::error_message([&] { models::stack_per_expert_tensors(shapes, "'old.safetensors'"); });
  EXPECT_CONTAINS(shape_error, "h.1.moe.expert_1.w2.weight has shape [4, 3], expert 0's is [3, 4]");
}

// A tiny MoE run's config; no data is read.
TrainConfig moe_run(const testing::ScratchDir& dir) {
  return parse_train_config(R"([model]
preset = "tiny-mla-moe"
vocab_size = 257
block_size = 16
bias = true
[data]
train = "shards/t_train_*.bin"
batch_size = 2
[optimizer]
name = "muon"
[run]
steps = 10
)",
                            "moe.toml", {"run.out_dir=" + dir.file("run")});
}

// `weights` in the old layout: each stacked expert tensor split into its
// experts, named as muonlab named them then.
NamedTensors per_expert_layout(const models::Transformer& model) {
  NamedTensors tensors;
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    const size_t at = name.find(".experts.");
    if (at == std::string::npos) {
      tensors.emplace_back(name, item.value().detach());
      continue;
    }
    for (int64_t e = 0; e < item.value().size(0); ++e) {
      tensors.emplace_back(name.substr(0, at) + ".expert_" + std::to_string(e) + name.substr(at + 8),
                           item.value().detach()[e]);
    }
  }
  return tensors;
}

TEST(PerExpertWeights, NamesOfAStacksSlices) {
  EXPECT_EQ(models::per_expert_names("h.2.moe.experts.w2.bias", 3),
            (std::vector<std::string>{"h.2.moe.expert_0.w2.bias", "h.2.moe.expert_1.w2.bias", "h.2.moe.expert_2.w2.bias"}));
  EXPECT_TRUE(models::per_expert_names("h.2.moe.shared_0.w2.weight", 3).empty());
  EXPECT_TRUE(models::per_expert_names("h.2.moe.router.weight", 3).empty());
}

TEST(PerExpertWeights, ACheckpointsWeightsLoad) {
  testing::ScratchDir dir;
  const TrainConfig config = moe_run(dir);
  torch::manual_seed(5);
  models::Transformer trained(config.model);
  TrainOptimizer optimizer(trained, config.optimizer);
  const std::string folder = save_checkpoint(config, {3, {0, 3}}, trained, optimizer);
  const auto weights_path = (std::filesystem::path(folder) / "model.safetensors").string();
  const auto old_layout = per_expert_layout(trained);
  ASSERT_GT(old_layout.size(), trained->named_parameters().size());
  save_safetensors(weights_path, old_layout, {{"format", "pt"}});

  // Today's model computes what the trained one does.
  torch::manual_seed(6);
  models::Transformer loaded(config.model);
  load_weights(weights_path, loaded);
  const auto tokens = torch::randint(0, 257, {2, 16});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded(tokens).logits, trained(tokens).logits));
}

// A run of the old layout: the model's parameters with each expert stack
// split into per-expert leaves, named and tagged as muonlab tagged them.
struct PerExpertRun {
  std::vector<optim::TaggedParam> params;
  std::unique_ptr<optim::MuonWithAuxAdamW> optimizer;

  PerExpertRun(const models::Transformer& model, const OptimizerSettings& settings) {
    for (const auto& tag : model->tagged_parameters()) {
      const size_t at = tag.name.find(".experts.");
      if (at == std::string::npos) {
        params.push_back(tag);
        continue;
      }
      for (int64_t e = 0; e < tag.tensor.size(0); ++e) {
        auto slice = tag;
        slice.name = tag.name.substr(0, at) + ".expert_" + std::to_string(e) + tag.name.substr(at + 8);
        slice.tensor = tag.tensor.detach()[e].clone().set_requires_grad(true);
        params.push_back(std::move(slice));
      }
    }
    optimizer = std::make_unique<optim::MuonWithAuxAdamW>(params, muon_options(settings),
                                                          adamw_options(settings.adamw_lr, settings));
  }

  // One step with a seeded random gradient for every parameter (expert
  // slices drawn as their stack's slices are, in `step_stacked`).
  void step(uint64_t seed) {
    torch::manual_seed(seed);
    for (auto& p : params) p.tensor.mutable_grad() = torch::randn(p.tensor.sizes());
    optimizer->step();
  }

  NamedTensors weights() const {
    NamedTensors named;
    for (const auto& p : params) named.emplace_back(p.name, p.tensor.detach());
    return named;
  }
};

TEST(PerExpertWeights, ARunOfTheOldLayoutResumes) {
  testing::ScratchDir dir;
  const TrainConfig config = moe_run(dir);
  torch::manual_seed(5);
  models::Transformer model(config.model);
  PerExpertRun old_run(model, config.optimizer);
  old_run.step(11);
  old_run.step(12);

  // Its checkpoint as muonlab wrote it then: today's folder with the old
  // weights and optimizer files in their place (the manifest dropped, so
  // that the replaced files are not reported as corrupt).
  TrainOptimizer unused(model, config.optimizer);
  const std::filesystem::path folder = save_checkpoint(config, {2, {0, 2}}, model, unused);
  save_safetensors((folder / "model.safetensors").string(), old_run.weights(), {{"format", "pt"}});
  old_run.optimizer->save_to_file((folder / "optimizer.pt").string());
  const auto state_path = (folder / "state.json").string();
  auto state = nlohmann::json::parse(std::ifstream(state_path));
  state.erase("files");
  std::ofstream(state_path, std::ios::trunc) << state.dump();

  torch::manual_seed(7);
  models::Transformer resumed(config.model);
  TrainOptimizer resumed_optimizer(resumed, config.optimizer);
  load_checkpoint(folder.string(), config, resumed, resumed_optimizer);

  // The next step from the same gradients: the old run's per-expert
  // gradients stacked for the resumed one.
  old_run.step(13);
  std::map<std::string, torch::Tensor> old_grads;
  for (const auto& p : old_run.params) old_grads[p.name] = p.tensor.grad();
  auto stacked_grads = per_expert_layout(resumed);
  for (auto& [name, tensor] : stacked_grads) tensor = old_grads.at(name);
  models::stack_per_expert_tensors(stacked_grads, "the gradients");
  const auto named = resumed->named_parameters();
  for (const auto& [name, grad] : stacked_grads) named[name].mutable_grad() = grad.clone();
  resumed_optimizer.step();

  auto expected = old_run.weights();
  models::stack_per_expert_tensors(expected, "the old run");
  ASSERT_EQ(expected.size(), named.size());
  for (const auto& [name, weight] : expected) {
    EXPECT_TRUE(torch::equal(named[name], weight)) << name;
  }
}

}  // namespace
}  // namespace muonlab::training
