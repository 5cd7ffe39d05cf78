// Optimizer state saved for E separate parameters loads into the one
// parameter that stacks them (set_saved_slice_names): a run of E matrices
// (or vectors) saved, loaded into the stack, and stepped on ends where the
// separate ones do, for Muon, Muon², Muon²-F, NorMuon and AdamW; a step count
// is the slices' largest and a slice saved without state starts fresh; a
// missing slice, a wrong shape and rank files that divide a stack are
// refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "data/data_test_util.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/hybrid.h"
#include "muonlab/optimizers/muon.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::load_bytes;
using testing::saved_bytes;

constexpr int64_t kExperts = 3;

torch::Tensor fresh_leaf(const torch::Tensor& t) { return t.detach().clone().set_requires_grad(true); }

std::string slice_name(int64_t e) { return "moe.expert_" + std::to_string(e) + ".w"; }

// "moe.experts.w" -> its slices' names; nothing else has slices.
std::vector<std::string> test_slice_names(const std::string& name, int64_t slices) {
  std::vector<std::string> names;
  if (name != "moe.experts.w") return names;
  for (int64_t e = 0; e < slices; ++e) names.push_back(slice_name(e));
  return names;
}

std::vector<TaggedParam> tagged_slices(const std::vector<torch::Tensor>& slices, ParamRole role) {
  std::vector<TaggedParam> tagged;
  for (size_t e = 0; e < slices.size(); ++e) tagged.push_back({slice_name(static_cast<int64_t>(e)), slices[e], role});
  return tagged;
}

// One step of `optimizer` on each (param, grad) pair.
void step_with(OptimizerBase& optimizer, const std::vector<torch::Tensor>& params,
               const std::vector<torch::Tensor>& grads) {
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i].clone();
  optimizer.step();
}

// Two steps on E separate parameters of `shape`, saved; the stack of their
// weights loaded with that state; then one more step on each side with the
// same gradients. make(tagged) builds the optimizer. Returns (separate
// parameters, stack) after the last step.
template <typename Make>
std::pair<std::vector<torch::Tensor>, torch::Tensor> resume_as_stack(c10::IntArrayRef shape, ParamRole role,
                                                                     Make make) {
  torch::manual_seed(21);
  std::vector<torch::Tensor> separate;
  for (int64_t e = 0; e < kExperts; ++e) separate.push_back(fresh_leaf(torch::randn(shape)));
  auto before = make(tagged_slices(separate, role));
  for (int step = 0; step < 2; ++step) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : separate) grads.push_back(torch::randn(p.sizes()));
    step_with(*before, separate, grads);
  }
  const auto bytes = saved_bytes(*before);

  torch::Tensor stack = fresh_leaf(torch::stack(separate));
  auto after = make({{"moe.experts.w", stack, role}});
  after->set_saved_slice_names(test_slice_names);
  load_bytes(*after, bytes);

  std::vector<torch::Tensor> grads;
  for (const auto& p : separate) grads.push_back(torch::randn(p.sizes()));
  step_with(*before, separate, grads);
  step_with(*after, {stack}, {torch::stack(grads)});
  return {separate, stack};
}

TEST(SlicedStateLoad, MuonFamilyResumesOnTheStackWhereTheSeparateMatricesGo) {
  struct Variant {
    std::string name;
    SecondMomentKind second_moment;
    bool neuron_norm;
  };
  for (const auto& v : {Variant{"Muon", SecondMomentKind::kNone, false}, Variant{"Muon2", SecondMomentKind::kFull, false},
                        Variant{"Muon2-F", SecondMomentKind::kFactored, false},
                        Variant{"NorMuon", SecondMomentKind::kNone, true}}) {
    SCOPED_TRACE(v.name);
    const auto options = MuonOptions(0.05).weight_decay(0.01).second_moment(v.second_moment).neuron_norm(v.neuron_norm);
    const auto [separate, stack] = resume_as_stack({8, 12}, ParamRole::kExpert, [&](std::vector<TaggedParam> tagged) {
      return std::make_unique<Muon>(tagged, options);
    });
    // The fused CPU step takes the stack matrix by matrix: bit for bit.
    for (int64_t e = 0; e < kExperts; ++e) EXPECT_TRUE(torch::equal(stack[e], separate[e])) << "expert " << e;
  }
}

TEST(SlicedStateLoad, AdamWResumesOnTheStackWhereTheSeparateVectorsGo) {
  const auto [separate, stack] = resume_as_stack({8}, ParamRole::kBias, [](std::vector<TaggedParam> tagged) {
    return std::make_unique<AdamW>(tagged, AdamWOptions(0.01).weight_decay(0.1));
  });
  for (int64_t e = 0; e < kExperts; ++e) EXPECT_TRUE(torch::equal(stack[e], separate[e])) << "expert " << e;
}

TEST(SlicedStateLoad, WithoutTheStateTheResumeWouldDiffer) {
  // What the tests above rely on: the loaded state matters. A stack that
  // starts its third step from fresh state ends elsewhere.
  torch::manual_seed(22);
  torch::Tensor fresh = fresh_leaf(torch::randn({kExperts, 8, 12}));
  torch::Tensor resumed = fresh_leaf(fresh);
  std::vector<torch::Tensor> separate;
  for (int64_t e = 0; e < kExperts; ++e) separate.push_back(fresh_leaf(fresh[e]));
  Muon before(tagged_slices(separate, ParamRole::kExpert), MuonOptions(0.05));
  for (const auto& p : separate) p.mutable_grad() = torch::randn(p.sizes());
  before.step();
  Muon with_state(std::vector<TaggedParam>{{"moe.experts.w", resumed, ParamRole::kExpert}}, MuonOptions(0.05));
  with_state.set_saved_slice_names(test_slice_names);
  load_bytes(with_state, saved_bytes(before));
  Muon without_state(std::vector<TaggedParam>{{"moe.experts.w", fresh, ParamRole::kExpert}}, MuonOptions(0.05));
  const auto grad = torch::randn(fresh.sizes());
  step_with(with_state, {resumed}, {grad});
  step_with(without_state, {fresh}, {grad});
  EXPECT_FALSE(torch::allclose(resumed, fresh, 1e-3, 1e-3));
}

TEST(SlicedStateLoad, AStepCountIsTheSlicesLargestAndASliceWithoutStateStartsFresh) {
  // Expert 0 steps three times, expert 1 has a gradient in the first step
  // only (it lags), expert 2 never (no state at all). The stack takes the
  // largest count; each buffer comes from its own slice, expert 2's fresh.
  torch::manual_seed(23);
  std::vector<torch::Tensor> separate;
  for (int64_t e = 0; e < kExperts; ++e) separate.push_back(fresh_leaf(torch::randn({8})));
  AdamW before(tagged_slices(separate, ParamRole::kBias), AdamWOptions(0.01));
  for (int step = 0; step < 3; ++step) {
    separate[0].mutable_grad() = torch::randn({8});
    separate[1].mutable_grad() = step == 0 ? torch::randn({8}) : torch::Tensor();
    separate[2].mutable_grad() = torch::Tensor();
    before.step();
  }
  ASSERT_FALSE(before.has_state(separate[2]));
  torch::Tensor stack = fresh_leaf(torch::stack(separate));
  AdamW after(std::vector<TaggedParam>{{"moe.experts.w", stack, ParamRole::kBias}}, AdamWOptions(0.01));
  after.set_saved_slice_names(test_slice_names);
  load_bytes(after, saved_bytes(before));

  struct Read : ParamStateVisitor {
    std::map<std::string, torch::Tensor> tensors;
    std::map<std::string, int64_t> integers;
    void tensor(const std::string& key, torch::Tensor& value) override { tensors[key] = value; }
    void integer(const std::string& key, int64_t& value) override { integers[key] = value; }
  };
  Read stacked;
  after.visitable_state(stack).visit(stacked);
  EXPECT_EQ(stacked.integers.at("step"), 3);
  ASSERT_EQ(stacked.tensors.size(), 2u);  // exp_avg, exp_avg_sq
  for (int64_t e = 0; e < 2; ++e) {
    Read slice;
    before.visitable_state(separate[e]).visit(slice);
    EXPECT_EQ(slice.integers.at("step"), e == 0 ? 3 : 1) << "expert " << e;
    for (const auto& [key, value] : slice.tensors) {
      EXPECT_TRUE(torch::equal(stacked.tensors.at(key)[e], value)) << key << " of expert " << e;
    }
  }
  for (const auto& [key, value] : stacked.tensors) {
    EXPECT_TRUE(torch::equal(value[2], torch::zeros({8}))) << key << " of expert 2";
  }
}

TEST(SlicedStateLoad, RankFilesThatDivideAStackAreRefused) {
  // Two ranks of a per-expert run, rank 0 owning experts 0 and 1, rank 1
  // expert 2: each file then holds part of the stack, and merging them is
  // refused as for any state two files hold.
  testing::ScratchDir dir;
  std::vector<std::string> files;
  for (int64_t rank = 0; rank < 2; ++rank) {
    torch::manual_seed(24);
    std::vector<torch::Tensor> separate;
    for (int64_t e = 0; e < kExperts; ++e) separate.push_back(fresh_leaf(torch::randn({8, 12})));
    MuonWithAuxAdamW run(tagged_slices(separate, ParamRole::kExpert), MuonOptions(0.05), AdamWOptions(0.01));
    const auto owned = rank == 0 ? std::vector<torch::Tensor>{separate[0], separate[1]} : std::vector<torch::Tensor>{separate[2]};
    run.muon()->set_ownership([owned](const torch::Tensor& p) {
      return std::any_of(owned.begin(), owned.end(), [&](const torch::Tensor& o) { return o.is_same(p); });
    });
    for (const auto& p : separate) p.mutable_grad() = torch::randn(p.sizes());
    run.step();
    files.push_back(dir.file("optimizer.rank" + std::to_string(rank) + ".pt"));
    run.save_shard_to_file(files.back(), rank);
  }
  torch::Tensor stack = fresh_leaf(torch::randn({kExperts, 8, 12}));
  MuonWithAuxAdamW merged(std::vector<TaggedParam>{{"moe.experts.w", stack, ParamRole::kExpert}}, MuonOptions(0.05),
                          AdamWOptions(0.01));
  for (auto* part : merged.parts()) part->set_saved_slice_names(test_slice_names);
  EXPECT_CONTAINS(error_message([&] { merged.load_from_shards(files); }), "both hold the muon state of 'moe.experts.w'");
}

class SlicedStateErrors : public ::testing::Test {
 protected:
  // A Muon state over `count` separate [8, 12] matrices after one step.
  static std::string separate_state(int64_t count) {
    std::vector<torch::Tensor> separate;
    for (int64_t e = 0; e < count; ++e) separate.push_back(fresh_leaf(torch::randn({8, 12})));
    Muon muon(tagged_slices(separate, ParamRole::kExpert), MuonOptions(0.05));
    for (const auto& p : separate) p.mutable_grad() = torch::randn(p.sizes());
    muon.step();
    return saved_bytes(muon);
  }

  // Loading `bytes` into a Muon over a stack of `shape`: the error.
  static std::string load_error(const std::string& bytes, c10::IntArrayRef shape, bool with_slice_names = true) {
    torch::Tensor stack = fresh_leaf(torch::randn(shape));
    Muon muon(std::vector<TaggedParam>{{"moe.experts.w", stack, ParamRole::kExpert}}, MuonOptions(0.05));
    if (with_slice_names) muon.set_saved_slice_names(test_slice_names);
    return error_message([&] { load_bytes(muon, bytes); });
  }
};

TEST_F(SlicedStateErrors, AMissingSliceIsNamed) {
  EXPECT_CONTAINS(load_error(separate_state(2), {3, 8, 12}),
                  "no entry for parameter 'moe.experts.w', nor for every one of its slices: 'moe.expert_2.w' is "
                  "missing");
}

TEST_F(SlicedStateErrors, ASliceOfTheWrongShapeIsNamed) {
  EXPECT_CONTAINS(load_error(separate_state(3), {3, 12, 8}),
                  "optimizer state of 'moe.expert_0.w' (slice 0 of parameter 'moe.experts.w') was saved for shape "
                  "[8, 12], but the slice has shape [12, 8]");
}

TEST_F(SlicedStateErrors, WithoutSliceNamesTheSlicesAreForeign) {
  EXPECT_CONTAINS(load_error(separate_state(3), {3, 8, 12}, /*with_slice_names=*/false),
                  "holds parameter 'moe.expert_0.w', which this muon optimizer does not have");
}

}  // namespace
}  // namespace muonlab::optim
