// Data-parallel training as separate processes over c10d Gloo on loopback,
// started by `muonlab launch`: 2 and 3 ranks end with the weights one
// process reaches on the same global batch, for every optimizer family (with
// distributed Muon sharding the NS work and state, and without; AdamW's
// moments sharded by default, and replicated), and a
// checkpoint written by 2 ranks resumes on 1 and on 3 to the same weights as
// the uninterrupted run.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "muonlab/core/remove_tree.h"
#include "muonlab/core/run_command.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/data/byte_tokenizer.h"
#include "muonlab/data/prepare_shards.h"
#include "muonlab/distributed/process_group.h"
#include "muonlab/training/trainer.h"
#include "test_util.h"

namespace muonlab::distributed {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kGlobalBatch = 6;  // sequences per step: 1 x 6, 2 x 3, 3 x 2

class DistributedTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    data::PrepareOptions options;
    options.inputs = {testing::test_data("text")};
    options.out_dir = dir_.file("shards");
    options.name = "t";
    options.val_fraction = 0.34;
    options.threads = 1;
    data::prepare_shards(data::ByteTokenizer(), options);
    testing::write_bytes(dir_.file("run.toml"), fmt::format(R"(
[model]
preset = "tiny-gpt2"
vocab_size = 257
[data]
train = "{0}/shards/t_train_*.bin"
val = "{0}/shards/t_val_*.bin"
tokenizer = "byte"
[optimizer]
weight_decay = 0.01
ns_dtype = "fp32"
[run]
dtype = "fp32"
steps = 8
eval_every = 4
eval_tokens = 2048
one_step_every = 4
)",
                                                            dir_.path()));
  }

  // `muonlab launch -n ranks -- train` (or one process in this one), each rank
  // on kGlobalBatch / ranks sequences; returns the run folder.
  std::string train_on(int64_t ranks, const std::string& name, std::vector<std::string> settings,
                       bool resume = false) {
    const std::string out_dir = dir_.file(name);
    settings.push_back(fmt::format("data.batch_size={}", kGlobalBatch / ranks));
    settings.push_back("run.out_dir=" + out_dir);
    std::vector<std::string> argv = {MUONLAB_BINARY, "launch", "-n", std::to_string(ranks), "--", "train",
                                     "--config", dir_.file("run.toml"), "--sample-tokens", "0"};
    for (const auto& setting : settings) {
      argv.push_back("--set");
      argv.push_back(setting);
    }
    if (resume) argv.push_back("--resume");
    const CommandResult result = run_command(argv);
    EXPECT_EQ(result.exit_status, 0) << result.output;
    return out_dir;
  }

  static std::map<std::string, torch::Tensor> weights_of(const std::string& run_dir) {
    std::map<std::string, torch::Tensor> by_name;
    for (auto& [name, tensor] : load_safetensors((fs::path(run_dir) / "model.safetensors").string()).tensors) {
      by_name[name] = tensor;
    }
    return by_name;
  }

  static void expect_same_weights(const std::string& run_a, const std::string& run_b, double tolerance) {
    const auto a = weights_of(run_a);
    const auto b = weights_of(run_b);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, tensor] : a) {
      ASSERT_TRUE(b.count(name)) << name;
      EXPECT_LT(testing::max_abs_diff(tensor, b.at(name)), tolerance) << name << ": " << run_a << " vs " << run_b;
    }
  }

  testing::ScratchDir dir_;
};

struct Variant {
  std::string name;
  std::vector<std::string> settings;
};

void PrintTo(const Variant& variant, std::ostream* out) { *out << variant.name; }

class RanksMatchOneProcess : public DistributedTraining, public ::testing::WithParamInterface<Variant> {};

// fp32 training: the ranks' sums run in another order than one process's,
// so the weights agree to rounding (a few 1e-7 after 8 steps), far below
// one step's change (about lr = 0.02 for Muon).
TEST_P(RanksMatchOneProcess, TwoAndThreeRanksReachOneProcessWeights) {
  const auto& settings = GetParam().settings;
  const std::string one = train_on(1, "one", settings);
  const std::string two = train_on(2, "two", settings);
  const std::string three = train_on(3, "three", settings);
  expect_same_weights(one, two, 2e-5);
  expect_same_weights(one, three, 2e-5);
  // And they did train: the weights moved far more than that.
  EXPECT_GT(testing::max_abs_diff(weights_of(one).at("h.0.attn.c_attn.weight"),
                                  weights_of(train_on(1, "short", [&] {
                                    auto s = settings;
                                    s.push_back("run.steps=2");
                                    return s;
                                  }())).at("h.0.attn.c_attn.weight")),
            1e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, RanksMatchOneProcess,
    ::testing::Values(Variant{"adamw", {"optimizer.name=adamw", "optimizer.lr=0.003"}},
                      Variant{"adamw_replicated",
                              {"optimizer.name=adamw", "optimizer.lr=0.003", "distributed.shard_adamw=false"}},
                      Variant{"muon_distributed", {"optimizer.name=muon"}},
                      Variant{"muon_replicated", {"optimizer.name=muon", "distributed.shard_muon=false"}},
                      Variant{"muon_no_overlap_accumulating",
                              {"optimizer.name=muon", "distributed.overlap=false", "run.grad_accum=2"}},
                      Variant{"adamw_overlap_accumulating", {"optimizer.name=adamw", "optimizer.lr=0.003", "run.grad_accum=2"}},
                      Variant{"group_muon_random", {"optimizer.group_size=2", "optimizer.grouping=random"}},
                      Variant{"muon2", {"optimizer.name=muon2"}}),
    [](const ::testing::TestParamInfo<Variant>& info) { return info.param.name; });

// The largest logit of each step's metrics line, and the heads clipped.
std::vector<std::pair<double, int64_t>> qk_clip_records(const std::string& run_dir) {
  std::vector<std::pair<double, int64_t>> records;
  std::ifstream metrics(fs::path(run_dir) / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("max_logit")) {
      records.emplace_back(record["max_logit"].get<double>(), record["qk_clipped_heads"].get<int64_t>());
    }
  }
  return records;
}

// QK-clip under 2 ranks: each rank sees half the batch, the per-head maxima
// are combined (MAX over ranks) before the clip, so rank 0 logs the maxima
// one process sees on the whole batch, clips the same heads, and the
// weights stay those of one process. tau sits below the tiny model's
// logits, so heads are clipped at most steps.
TEST_F(DistributedTraining, QkClipCombinesTheHeadMaximaOfEveryRank) {
  const std::vector<std::string> settings = {"optimizer.name=muon", "optimizer.qk_clip_tau=0.05"};
  const std::string one = train_on(1, "one", settings);
  const std::string two = train_on(2, "two", settings);
  expect_same_weights(one, two, 2e-5);
  const auto alone = qk_clip_records(one);
  const auto ranks = qk_clip_records(two);
  ASSERT_EQ(alone.size(), 8u);
  ASSERT_EQ(ranks.size(), alone.size());
  int64_t clipped = 0;
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_NEAR(ranks[i].first, alone[i].first, 1e-5 * alone[i].first) << "step " << i + 1;
    EXPECT_EQ(ranks[i].second, alone[i].second) << "step " << i + 1;
    clipped += alone[i].second;
  }
  EXPECT_GE(clipped, 8) << "too few clips: the test would prove little";
}

// run.hellaswag on 3 ranks: each scores every third item and the counts
// are added up, so rank 0 logs what one process logs on the same weights.
std::vector<nlohmann::json> hellaswag_records(const std::string& run_dir) {
  std::ifstream metrics(fs::path(run_dir) / "metrics.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    if (record.contains("hellaswag_acc_norm")) records.push_back(record);
  }
  return records;
}

TEST_F(DistributedTraining, HellaSwagCountsAddUpOverRanks) {
  std::string items;
  for (int i = 0; i < 7; ++i) {
    items += fmt::format(R"({{"ctx": "It was the {} day of", "endings": ["the week.", "May.", "zq"], "label": {}}})",
                         i, i % 3) + "\n";
  }
  testing::write_bytes(dir_.file("items.jsonl"), items);
  const std::vector<std::string> settings = {"optimizer.name=muon", "run.hellaswag=" + dir_.file("items.jsonl")};
  const auto alone = hellaswag_records(train_on(1, "one", settings));
  const auto ranks = hellaswag_records(train_on(3, "three", settings));
  ASSERT_EQ(alone.size(), 2u);  // steps 4 and 8
  ASSERT_EQ(ranks.size(), alone.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(ranks[i].at("hellaswag_items"), 7);
    EXPECT_EQ(ranks[i].at("hellaswag_acc_norm"), alone[i].at("hellaswag_acc_norm")) << "step " << ranks[i]["step"];
    EXPECT_EQ(ranks[i].at("hellaswag_acc"), alone[i].at("hellaswag_acc")) << "step " << ranks[i]["step"];
  }
}

// The optimizer state files a checkpoint's manifest lists, and checks that
// they are exactly the optimizer files in its folder.
std::vector<std::string> optimizer_files(const std::string& run_dir, const std::string& step) {
  const fs::path folder = fs::path(run_dir) / "checkpoints" / step;
  std::ifstream in(folder / "state.json");
  const auto listed = nlohmann::json::parse(in).at("optimizer_files").get<std::vector<std::string>>();
  std::vector<std::string> present;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("optimizer", 0) == 0) present.push_back(name);
  }
  std::sort(present.begin(), present.end());
  EXPECT_EQ(present, listed) << folder;
  return listed;
}

// A checkpoint of distributed Muon² (state sharded over 2 ranks, each rank
// writing its own state file) resumes on 1 rank and on 3 with the same
// global batch and ends where the uninterrupted 2-rank run ends; the
// resumed runs write one file (1 rank) and three (3 ranks).
TEST_F(DistributedTraining, ShardedCheckpointResumesOnOneAndOnThreeRanks) {
  const std::vector<std::string> settings = {"optimizer.name=muon2f", "optimizer.group_size=2",
                                             "optimizer.grouping=random", "run.checkpoint_every=4"};
  const std::string whole = train_on(2, "whole", settings);
  EXPECT_EQ(optimizer_files(whole, "step_00000004"),
            (std::vector<std::string>{"optimizer.rank0-of-2.pt", "optimizer.rank1-of-2.pt"}));
  const std::map<int64_t, std::vector<std::string>> files_when_resumed_on = {
      {1, {"optimizer.pt"}},
      {3, {"optimizer.rank0-of-3.pt", "optimizer.rank1-of-3.pt", "optimizer.rank2-of-3.pt"}}};
  for (const auto& [ranks, files] : files_when_resumed_on) {
    const std::string resumed = dir_.file(fmt::format("resumed_on_{}", ranks));
    fs::copy(whole, resumed, fs::copy_options::recursive);
    remove_tree((fs::path(resumed) / "checkpoints" / "step_00000008").string());
    fs::remove(fs::path(resumed) / "model.safetensors");
    train_on(ranks, fmt::format("resumed_on_{}", ranks), settings, /*resume=*/true);
    expect_same_weights(whole, resumed, 2e-5);
    EXPECT_EQ(optimizer_files(resumed, "step_00000008"), files);
  }
}

// NCCL: two ranks, each on its own GPU, reach one GPU process's weights
// (fp32, NS in fp32). Needs a build with NCCL and two GPUs, as NCCL refuses
// two ranks on one GPU; skipped otherwise with the reason.
class DistributedTrainingOnCuda : public DistributedTraining {};

TEST_F(DistributedTrainingOnCuda, NcclRanksOnTwoGpusReachOneGpuWeights) {
  if (!nccl_built()) GTEST_SKIP() << "this muonlab was built without NCCL (LibTorch without it, or MUONLAB_NCCL=OFF)";
  if (!torch::cuda::is_available() || torch::cuda::device_count() < 2) {
    GTEST_SKIP() << "needs two GPUs (NCCL runs one rank per GPU); this machine has "
                 << (torch::cuda::is_available() ? torch::cuda::device_count() : 0);
  }
  for (const std::string optimizer : {"adamw", "muon"}) {
    const std::vector<std::string> settings = {"run.device=cuda", "optimizer.ns_dtype=fp32",
                                               "optimizer.name=" + optimizer};
    expect_same_weights(train_on(1, "one_gpu_" + optimizer, settings), train_on(2, "two_gpus_" + optimizer, settings),
                        1e-4);
  }
}

}  // namespace
}  // namespace muonlab::distributed
