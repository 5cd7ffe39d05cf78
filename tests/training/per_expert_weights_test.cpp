// Weights in the layout muonlab wrote before it stacked a MoE layer's routed
// experts ("h.0.moe.expert_3.w1.weight", one [out, in] tensor per expert)
// still load: the rewrite onto the stacked "h.0.moe.experts.w1.weight"
// [E, out, in] against torch::stack, a gap or a shape mismatch named, a
// checkpoint's weights loaded into today's model (same outputs), and a
// resume from such a checkpoint refused by name, since its optimizer state
// is kept per expert.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "data/data_test_util.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/models/stacked_expert_names.h"
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

TEST(PerExpertWeights, ACheckpointsWeightsLoadButItsRunDoesNotResume) {
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

  // The weights: today's model computes what the trained one does.
  torch::manual_seed(6);
  models::Transformer loaded(config.model);
  load_weights(weights_path, loaded);
  const auto tokens = torch::randint(0, 257, {2, 16});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded(tokens).logits, trained(tokens).logits));

  // A resume: refused by name (the manifest dropped, so that the rewritten
  // file is not reported as corrupt first), the model left untouched.
  const auto state_path = (std::filesystem::path(folder) / "state.json").string();
  auto state = nlohmann::json::parse(std::ifstream(state_path));
  state.erase("files");
  std::ofstream(state_path, std::ios::trunc) << state.dump();
  torch::manual_seed(7);
  models::Transformer resumed(config.model);
  const auto before = resumed->named_parameters()["h.1.moe.experts.w1.weight"].clone();
  TrainOptimizer resumed_optimizer(resumed, config.optimizer);
  const auto error = testing::error_message([&] { load_checkpoint(folder, config, resumed, resumed_optimizer); });
  EXPECT_CONTAINS(error, "stores each MoE expert's weights apart");
  EXPECT_CONTAINS(error, folder);
  EXPECT_TRUE(torch::equal(resumed->named_parameters()["h.1.moe.experts.w1.weight"], before));
}

}  // namespace
}  // namespace muonlab::training
