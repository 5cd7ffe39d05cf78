// Optimizer state written as one file per rank (distributed checkpoints):
// merged, each parameter's state is exactly that of the rank that owned it;
// a rank that owns a share keeps only that share while loading; a part every
// rank keeps whole is written by rank 0 alone; files that overlap or come
// from different steps are refused naming them, and the state is unchanged.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <unordered_set>

#include "data/data_test_util.h"
#include "muonlab/optimizers/hybrid.h"
#include "test_util.h"
#include "tiny_model.h"

namespace muonlab::optim {
namespace {

const MuonOptions kShardedMuon = MuonOptions(0.02).ns_dtype(NsDtype::kFloat64).second_moment(SecondMomentKind::kFull);
const AdamWOptions kShardedAdamW = AdamWOptions(1e-2).weight_decay(0.0);

// Every buffer and counter of one parameter's state, copied.
class CopyBuffers : public ParamStateVisitor {
 public:
  explicit CopyBuffers(std::string prefix) : prefix_(std::move(prefix)) {}
  void tensor(const std::string& key, torch::Tensor& value) override {
    if (value.defined()) copied[prefix_ + key] = value.clone();
  }
  void integer(const std::string& key, int64_t& value) override {
    copied[prefix_ + key] = torch::tensor(value, torch::kInt64);
  }
  std::map<std::string, torch::Tensor> copied;

 private:
  std::string prefix_;
};

// "<part>/<parameter>/<buffer>" -> value, for every parameter with state.
std::map<std::string, torch::Tensor> state_of(const MuonWithAuxAdamW& optimizer) {
  std::map<std::string, torch::Tensor> state;
  for (OptimizerBase* part : optimizer.parts()) {
    for (const auto& p : part->all_parameters()) {
      if (!part->has_state(p)) continue;
      CopyBuffers copy(part->kind() + "/" + part->parameter_name(p) + "/");
      part->visitable_state(p).visit(copy);
      state.insert(copy.copied.begin(), copy.copied.end());
    }
  }
  return state;
}

void expect_same_state(const std::map<std::string, torch::Tensor>& actual,
                       const std::map<std::string, torch::Tensor>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [key, value] : expected) {
    ASSERT_TRUE(actual.count(key)) << key;
    EXPECT_TRUE(torch::equal(actual.at(key), value)) << key;
  }
}

// Rank `rank` of two owns every other parameter of each part in `parts`
// ("muon", "adamw").
void own_half(MuonWithAuxAdamW& optimizer, int64_t rank, const std::unordered_set<std::string>& parts) {
  for (OptimizerBase* part : optimizer.parts()) {
    if (!parts.count(part->kind())) continue;
    std::unordered_set<const void*> owned;
    const auto params = part->all_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (static_cast<int64_t>(i % 2) == rank) owned.insert(params[i].unsafeGetTensorImpl());
    }
    part->set_ownership([owned](const torch::Tensor& p) { return owned.count(p.unsafeGetTensorImpl()) > 0; });
  }
}

struct Trained {
  testing::TinyModel model = nullptr;
  std::unique_ptr<MuonWithAuxAdamW> optimizer;
};

// A tiny model's optimizer after `steps` steps, as rank `rank` of two
// sharding `sharded_parts` (rank -1: one process owning everything).
Trained trained(int steps, int64_t rank, const std::unordered_set<std::string>& sharded_parts = {"muon", "adamw"}) {
  Trained run{testing::make_tiny_model(1), nullptr};
  run.optimizer = std::make_unique<MuonWithAuxAdamW>(run.model->named_parameters(), kShardedMuon, kShardedAdamW);
  if (rank >= 0) own_half(*run.optimizer, rank, sharded_parts);
  for (int step = 0; step < steps; ++step) {
    run.optimizer->zero_grad();
    run.model->loss(testing::tiny_batch(10 + step)).backward();
    run.optimizer->step();
  }
  return run;
}

class StateShards : public ::testing::Test {
 protected:
  // Two ranks' files after two steps.
  void SetUp() override {
    rank0_ = trained(2, 0);
    rank1_ = trained(2, 1);
    rank0_.optimizer->save_shard_to_file(file0_, 0);
    rank1_.optimizer->save_shard_to_file(file1_, 1);
  }

  testing::ScratchDir dir_;
  const std::string file0_ = dir_.file("optimizer.rank0-of-2.pt");
  const std::string file1_ = dir_.file("optimizer.rank1-of-2.pt");
  Trained rank0_, rank1_;
};

TEST_F(StateShards, EachParameterComesFromTheRankThatOwnedIt) {
  auto expected = state_of(*rank0_.optimizer);
  const auto of_rank1 = state_of(*rank1_.optimizer);
  ASSERT_FALSE(expected.empty());
  ASSERT_FALSE(of_rank1.empty());
  for (const auto& [key, value] : of_rank1) EXPECT_TRUE(expected.emplace(key, value).second) << key << " on both";

  Trained merged = trained(0, -1);
  merged.optimizer->load_from_shards({file0_, file1_});
  expect_same_state(state_of(*merged.optimizer), expected);
  EXPECT_EQ(merged.optimizer->step_count(), 2);
  // Every parameter of both parts had state on one rank or the other.
  size_t params = 0;
  for (OptimizerBase* part : merged.optimizer->parts()) params += part->all_parameters().size();
  size_t with_state = 0;
  for (OptimizerBase* part : merged.optimizer->parts()) {
    for (const auto& p : part->all_parameters()) with_state += part->has_state(p) ? 1 : 0;
  }
  EXPECT_EQ(with_state, params);
}

TEST_F(StateShards, ARankKeepsOnlyItsShareWhileLoading) {
  Trained rank1_again = trained(0, 1);
  rank1_again.optimizer->load_from_shards({file0_, file1_});
  expect_same_state(state_of(*rank1_again.optimizer), state_of(*rank1_.optimizer));
}

TEST_F(StateShards, APartEveryRankKeepsWholeIsWrittenByRankZeroAlone) {
  // Only Muon's matrices sharded: AdamW's state is on both ranks, alike in
  // value, but only rank 0's file holds it.
  Trained muon_rank0 = trained(2, 0, {"muon"});
  Trained muon_rank1 = trained(2, 1, {"muon"});
  const std::string a = dir_.file("a.pt"), b = dir_.file("b.pt");
  muon_rank0.optimizer->save_shard_to_file(a, 0);
  muon_rank1.optimizer->save_shard_to_file(b, 1);
  Trained merged = trained(0, -1);
  merged.optimizer->load_from_shards({a, b});  // no parameter in both files
  auto expected = state_of(*muon_rank0.optimizer);
  for (const auto& [key, value] : state_of(*muon_rank1.optimizer)) {
    if (key.rfind("muon/", 0) == 0) expected.emplace(key, value);
  }
  expect_same_state(state_of(*merged.optimizer), expected);
}

TEST_F(StateShards, OverlappingFilesOrFilesOfOtherStepsAreRefusedUnchanged) {
  Trained merged = trained(0, -1);
  merged.optimizer->load_from_file(file0_);
  const auto before = state_of(*merged.optimizer);

  EXPECT_CONTAINS(testing::error_message([&] { merged.optimizer->load_from_shards({file0_, file0_}); }),
                  "'" + file0_ + "' and '" + file0_ + "' both hold the");
  expect_same_state(state_of(*merged.optimizer), before);

  rank1_.optimizer->zero_grad();
  rank1_.model->loss(testing::tiny_batch(20)).backward();
  rank1_.optimizer->step();
  const std::string later = dir_.file("later.pt");
  rank1_.optimizer->save_shard_to_file(later, 1);
  const std::string refused = testing::error_message([&] { merged.optimizer->load_from_shards({file0_, later}); });
  EXPECT_CONTAINS(refused, "was written after 2 steps");
  EXPECT_CONTAINS(refused, "'" + later + "' after 3");
  EXPECT_CONTAINS(refused, "not the files of one checkpoint");
  expect_same_state(state_of(*merged.optimizer), before);
}

}  // namespace
}  // namespace muonlab::optim
