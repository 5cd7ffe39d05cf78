// Data parallelism on c10d's Gloo backend, with the ranks as threads of this
// process joined through a HashStore (the collectives are Gloo's real ones
// over loopback; separate processes differ only in the store): averaged
// gradients are the mean over ranks, and R ranks each stepping on 1/R of a
// batch end with the weights one process gets from the whole batch, for
// AdamW, Muon, Group Muon and Muon². Also: the torchrun variables.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <map>
#include <thread>

#include "models/model_test_util.h"
#include "muonlab/models/transformer.h"
#include "muonlab/distributed/gradient_sync.h"
#include "muonlab/distributed/process_group.h"
#include "muonlab/training/train_optimizer.h"
#include "test_util.h"

namespace muonlab::distributed {
namespace {

using namespace std::chrono_literals;

// Runs body(rank, group) on `world` threads, each a rank of one Gloo group.
void run_ranks(int64_t world, const std::function<void(int64_t, compat::CollectiveGroup&)>& body) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(world);
  for (int64_t rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        auto group = gloo_group(store, rank, world, 30s);
        body(rank, *group);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int64_t rank = 0; rank < world; ++rank) EXPECT_EQ(errors[rank], "") << "rank " << rank;
}

TEST(DataParallel, AveragedGradientsAreTheMeanOverRanksInEveryBucket) {
  constexpr int64_t kWorld = 3;
  std::vector<std::vector<torch::Tensor>> params(kWorld);
  for (int64_t rank = 0; rank < kWorld; ++rank) {
    torch::manual_seed(100 + rank);
    params[rank] = {torch::zeros({5, 4}, torch::kFloat64).set_requires_grad(true),
                    torch::zeros({7}, torch::kFloat64).set_requires_grad(true),
                    torch::zeros({3, 3}, torch::kFloat64).set_requires_grad(true)};
    params[rank][0].mutable_grad() = torch::randn({5, 4}, torch::kFloat64);
    params[rank][1].mutable_grad() = torch::randn({7}, torch::kFloat64);
    if (rank != 1) params[rank][2].mutable_grad() = torch::randn({3, 3}, torch::kFloat64);  // rank 1: none
  }
  std::vector<torch::Tensor> expected;
  for (size_t i = 0; i < 3; ++i) {
    auto sum = torch::zeros_like(params[0][i]);
    for (int64_t rank = 0; rank < kWorld; ++rank) {
      if (params[rank][i].grad().defined()) sum += params[rank][i].grad();
    }
    expected.push_back(sum / kWorld);
  }
  // 64-byte buckets: the 20- and 7-element gradients each need their own.
  run_ranks(kWorld, [&](int64_t rank, compat::CollectiveGroup& group) { average_gradients(params[rank], group, 64); });
  for (int64_t rank = 0; rank < kWorld; ++rank) {
    for (size_t i = 0; i < 3; ++i) EXPECT_TENSOR_NEAR(params[rank][i].grad(), expected[i], 1e-14);
  }
}

struct Setting {
  std::string name;
};

training::OptimizerSettings settings_of(const Setting& setting) {
  training::OptimizerSettings s;
  s.ns_dtype = "fp64";
  s.weight_decay = 0.1;
  s.name = setting.name == "adamw" ? "adamw" : setting.name == "muon2" ? "muon2" : "muon";
  if (s.name == "adamw") s.lr = 1e-2;
  if (setting.name == "group_muon") {
    s.group_size = 2;
    s.grouping = "random";
    s.grouping_seed = 3;
  }
  return s;
}

// The initial weights and three batches of 6 sequences, drawn once: torch's
// global generator is shared by the rank threads, so nothing random may be
// drawn inside them.
struct Inputs {
  models::ModelConfig config = testing::tiny_config("tiny-gpt2");
  std::map<std::string, torch::Tensor> initial;
  std::vector<torch::Tensor> batches;

  Inputs() {
    torch::manual_seed(7);
    models::Transformer model(config);
    for (const auto& item : model->named_parameters()) initial[item.key()] = item.value().detach().to(torch::kFloat64);
    for (int step = 0; step < 3; ++step) batches.push_back(torch::randint(0, config.vocab_size, {6, 17}, torch::kLong));
  }
};

// Three steps on a tiny float64 GPT-2: the whole batch in one process, or
// 6 / world sequences on each rank with the gradients averaged.
std::map<std::string, torch::Tensor> train_three_steps(const Inputs& in, const Setting& setting, int64_t world,
                                                       int64_t rank, compat::CollectiveGroup* group) {
  models::Transformer model(in.config);
  model->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) item.value().copy_(in.initial.at(item.key()));
  }
  training::TrainOptimizer optimizer(model, settings_of(setting));
  std::vector<torch::Tensor> params = model->parameters();
  const int64_t share = 6 / world;
  for (const auto& batch : in.batches) {
    const auto mine = batch.narrow(0, rank * share, share);
    optimizer.zero_grad();
    models::next_token_loss(model->forward(mine.narrow(1, 0, 16)).logits, mine.narrow(1, 1, 16)).backward();
    if (group != nullptr) average_gradients(params, *group);
    optimizer.step();
  }
  std::map<std::string, torch::Tensor> weights;
  for (const auto& item : model->named_parameters()) weights[item.key()] = item.value().detach().clone();
  return weights;
}

class DataParallelEqualsOneProcess : public ::testing::TestWithParam<std::tuple<Setting, int64_t>> {};

TEST_P(DataParallelEqualsOneProcess, SameWeightsAfterThreeSteps) {
  const auto& [setting, world] = GetParam();
  const Inputs inputs;
  const auto single = train_three_steps(inputs, setting, 1, 0, nullptr);
  std::vector<std::map<std::string, torch::Tensor>> ranks(world);
  run_ranks(world, [&](int64_t rank, compat::CollectiveGroup& group) {
    ranks[rank] = train_three_steps(inputs, setting, world, rank, &group);
  });
  for (int64_t rank = 0; rank < world; ++rank) {
    ASSERT_EQ(ranks[rank].size(), single.size());
    for (const auto& [name, weight] : single) EXPECT_TENSOR_NEAR(ranks[rank].at(name), weight, 1e-10);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, DataParallelEqualsOneProcess,
    ::testing::Combine(::testing::Values(Setting{"adamw"}, Setting{"muon"}, Setting{"group_muon"}, Setting{"muon2"}),
                       ::testing::Values(2, 3)),
    [](const auto& info) {
      return std::get<0>(info.param).name + "_" + std::to_string(std::get<1>(info.param)) + "_ranks";
    });

TEST(DistEnv, FromTorchrunVariables) {
  std::map<std::string, std::string> vars;
  const auto lookup = [&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  EXPECT_FALSE(dist_env_from_environment(lookup).distributed());
  vars = {{"RANK", "2"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "1234"}};
  const DistEnv env = dist_env_from_environment(lookup);
  EXPECT_EQ(env.rank, 2);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_EQ(env.master_port, 1234);
  vars["RANK"] = "4";
  EXPECT_CONTAINS(testing::error_message([&] { dist_env_from_environment(lookup); }),
                  "RANK=4: expected 0 to WORLD_SIZE - 1 = 3");
  vars["RANK"] = "x";
  EXPECT_CONTAINS(testing::error_message([&] { dist_env_from_environment(lookup); }), "RANK='x': expected an integer");
  vars = {{"WORLD_SIZE", "2"}};
  EXPECT_CONTAINS(testing::error_message([&] { dist_env_from_environment(lookup); }), "WORLD_SIZE is set but RANK is not");
  vars = {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}};
  EXPECT_CONTAINS(testing::error_message([&] { dist_env_from_environment(lookup); }), "MASTER_PORT=70000");
}

TEST(RankDevice, OneGpuPerRankAtLocalRank) {
  DistEnv one_process;
  EXPECT_EQ(rank_device("cpu", one_process, 0), c10::Device(c10::kCPU));
  EXPECT_EQ(rank_device("cuda:1", one_process, 2), c10::Device("cuda:1"));
  EXPECT_CONTAINS(testing::error_message([&] { rank_device("cuda", one_process, 0); }),
                  "run.device = \"cuda\": LibTorch sees no CUDA GPU on this machine; set run.device = \"cpu\"");
  EXPECT_CONTAINS(testing::error_message([&] { rank_device("cuda:2", one_process, 2); }),
                  "run.device = \"cuda:2\": this machine has 2 GPU(s), cuda:0 to cuda:1");
  DistEnv ranks;
  ranks.world_size = 4;
  ranks.rank = 3;
  ranks.local_rank = 1;  // the second rank on the second machine
  EXPECT_EQ(rank_device("cpu", ranks, 8), c10::Device(c10::kCPU));
  EXPECT_EQ(rank_device("cuda", ranks, 2), c10::Device("cuda:1"));
  EXPECT_CONTAINS(testing::error_message([&] { rank_device("cuda", ranks, 1); }),
                  "LOCAL_RANK=1 needs GPU cuda:1, and this machine has 1 GPU(s)");
  EXPECT_CONTAINS(testing::error_message([&] { rank_device("cuda:0", ranks, 2); }),
                  "run.device = \"cuda:0\" with 4 ranks: name \"cuda\"");
}

// Builds without NCCL (Debian's LibTorch) refuse GPU ranks by name, before
// any rank waits on a collective.
TEST(NcclGroup, RefusedByNameWhereTheBuildHasNoNccl) {
  if (nccl_built()) GTEST_SKIP() << "this build has NCCL; its groups are tested by DistributedTrainingOnCuda";
  auto store = c10::make_intrusive<c10d::HashStore>();
  EXPECT_CONTAINS(testing::error_message([&] { nccl_group(store, 0, 2, std::chrono::seconds(1)); }),
                  "rank 0 of 2: training on GPUs across ranks needs NCCL, and this muonlab was built without it");
}

}  // namespace
}  // namespace muonlab::distributed
