// Group Muon as an option of Muon (docs/algorithms.md, Group Muon), against
// references that cut the matrices by hand with plain slices: g = H is one
// block per projection, g = 1 is head-wise, strided groups take every
// (H/g)-th head, GQA's smaller K/V segments stay whole, full-QKV is plain
// Muon, block_scale rescales by each block's shape, and random grouping is
// reproducible from its seed and restored from the state file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "data/data_test_util.h"
#include "models/model_test_util.h"
#include "muonlab/models/transformer.h"
#include "muonlab/optimizers/hybrid.h"
#include "muonlab/optimizers/muon.h"
#include "reference_newton_schulz.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using testing::error_message;
using testing::random_matrix;

constexpr int64_t kSmallHeads = 4, kSmallHeadDim = 3, kWidth = kSmallHeads * kSmallHeadDim;

using testing::reference_newton_schulz;

// A GPT-2-style attention: fused QKV (rows: Q heads, K heads, V heads),
// output projection (heads in columns), and an MLP matrix that is never
// grouped. kv_heads < kSmallHeads makes it GQA.
std::vector<TaggedParam> attention_params(int64_t kv_heads = kSmallHeads, uint64_t seed = 1) {
  const int64_t qkv_rows = (kSmallHeads + 2 * kv_heads) * kSmallHeadDim;
  std::vector<TaggedParam> params(3);
  params[0] = {"attn.qkv", random_matrix(qkv_rows, kWidth, seed).set_requires_grad(true),
               ParamRole::kAttnQKV};
  params[0].heads = HeadLayout{kSmallHeads + 2 * kv_heads, kSmallHeadDim, HeadAxis::kRows, {kSmallHeads, kv_heads, kv_heads}};
  params[1] = {"attn.o", random_matrix(kWidth, kWidth, seed + 1).set_requires_grad(true), ParamRole::kAttnO};
  params[1].heads = HeadLayout{kSmallHeads, kSmallHeadDim, HeadAxis::kCols, {}};
  params[2] = {"mlp.fc", random_matrix(2 * kWidth, kWidth, seed + 2).set_requires_grad(true), ParamRole::kMlp};
  return params;
}

MuonOptions base_options() {
  return MuonOptions(0.05).momentum(0).nesterov(false).weight_decay(0).ns_dtype(NsDtype::kFloat64);
}

// The gradients of one step, the same for every optimizer compared.
std::vector<torch::Tensor> gradients(const std::vector<TaggedParam>& params, uint64_t seed) {
  std::vector<torch::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    grads.push_back(random_matrix(params[i].tensor.size(0), params[i].tensor.size(1), seed + i));
  }
  return grads;
}

// The update Muon applied to each parameter in one step, divided by -lr.
std::vector<torch::Tensor> one_step_updates(std::vector<TaggedParam> params, const MuonOptions& options,
                                            uint64_t grad_seed = 100) {
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.tensor.detach().clone());
  Muon muon(params, options);
  const auto grads = gradients(params, grad_seed);
  for (size_t i = 0; i < params.size(); ++i) params[i].tensor.mutable_grad() = grads[i];
  muon.step();
  std::vector<torch::Tensor> updates;
  for (size_t i = 0; i < params.size(); ++i) {
    updates.push_back((before[i] - params[i].tensor.detach()) / options.lr());
  }
  return updates;
}

// NS of each [begin, end) slice along `dim`, written back in place.
torch::Tensor orthogonalize_slices(const torch::Tensor& G, int64_t dim,
                                   const std::vector<std::pair<int64_t, int64_t>>& slices) {
  auto O = torch::zeros_like(G);
  for (const auto& [begin, end] : slices) {
    O.slice(dim, begin, end).copy_(reference_newton_schulz(G.slice(dim, begin, end)));
  }
  return O;
}

std::vector<std::pair<int64_t, int64_t>> head_slices(int64_t first_row, int64_t heads, int64_t heads_per_block) {
  std::vector<std::pair<int64_t, int64_t>> slices;
  for (int64_t h = 0; h < heads; h += heads_per_block) {
    slices.push_back({first_row + h * kSmallHeadDim, first_row + (h + heads_per_block) * kSmallHeadDim});
  }
  return slices;
}

// 'original' scale sqrt(max(1, r / c)) of a matrix's shape.
double scale_of(int64_t rows, int64_t cols) { return std::sqrt(std::max(1.0, double(rows) / double(cols))); }

TEST(GroupMuon, GroupSizeEqualToHeadsIsOneBlockPerProjection) {
  const auto params = attention_params();
  const auto grads = gradients(params, 100);
  const auto updates = one_step_updates(params, base_options().group_size(kSmallHeads));
  // Q, K and V each whole; O whole; the whole QKV's lr scale (sqrt(3)).
  const auto qkv = orthogonalize_slices(grads[0], 0, {{0, 12}, {12, 24}, {24, 36}}) * scale_of(36, 12);
  EXPECT_TENSOR_NEAR(updates[0], qkv, 1e-10);
  EXPECT_TENSOR_NEAR(updates[1], reference_newton_schulz(grads[1]), 1e-10);
  EXPECT_TENSOR_NEAR(updates[2], reference_newton_schulz(grads[2]) * scale_of(24, 12), 1e-10);
}

TEST(GroupMuon, GroupSizeOneIsHeadWise) {
  const auto params = attention_params();
  const auto grads = gradients(params, 100);
  const auto updates = one_step_updates(params, base_options().group_size(1));
  auto rows = head_slices(0, 3 * kSmallHeads, 1);
  EXPECT_TENSOR_NEAR(updates[0], orthogonalize_slices(grads[0], 0, rows) * scale_of(36, 12), 1e-10);
  EXPECT_TENSOR_NEAR(updates[1], orthogonalize_slices(grads[1], 1, head_slices(0, kSmallHeads, 1)), 1e-10);
  EXPECT_TENSOR_NEAR(updates[2], reference_newton_schulz(grads[2]) * scale_of(24, 12), 1e-10);
}

// The heads' 3 x 12 blocks take Gram Newton-Schulz (4x wider than tall),
// the whole QKV too; the references are the standard form's.
TEST(GroupMuon, GroupSizeOneIsHeadWiseInTheGramFormToo) {
  const auto params = attention_params();
  const auto grads = gradients(params, 100);
  const auto gram = base_options().group_size(1).ns_method(NsMethod::kGram);
  ASSERT_TRUE(uses_gram_form(kSmallHeadDim, kWidth, gram.newton_schulz_config()));
  const auto updates = one_step_updates(params, gram);
  auto rows = head_slices(0, 3 * kSmallHeads, 1);
  EXPECT_TENSOR_NEAR(updates[0], orthogonalize_slices(grads[0], 0, rows) * scale_of(36, 12), 1e-10);
  EXPECT_TENSOR_NEAR(updates[1], orthogonalize_slices(grads[1], 1, head_slices(0, kSmallHeads, 1)), 1e-10);
  EXPECT_TENSOR_NEAR(updates[2], reference_newton_schulz(grads[2]) * scale_of(24, 12), 1e-10);
}

TEST(GroupMuon, StridedGroupsTakeEveryOtherHead) {
  // H = 4, g = 2: strided groups {0, 2} and {1, 3} in each of Q, K, V.
  const auto params = attention_params();
  const auto grads = gradients(params, 100);
  const auto updates = one_step_updates(params, base_options().group_size(2).grouping_rule(GroupingRule::kStrided));
  auto expected = torch::zeros_like(grads[0]);
  for (int64_t segment = 0; segment < 3; ++segment) {
    for (int64_t first : {0, 1}) {
      const auto rows = torch::cat({torch::arange(0, 3), torch::arange(6, 9)}) + (segment * 4 + first) * kSmallHeadDim;
      expected.index_copy_(0, rows, reference_newton_schulz(grads[0].index_select(0, rows)));
    }
  }
  EXPECT_TENSOR_NEAR(updates[0], expected * scale_of(36, 12), 1e-10);
}

TEST(GroupMuon, FullQkvWhenNoneOfQKVIsGroupedIsPlainMuon) {
  const auto params = attention_params();
  const auto grads = gradients(params, 100);
  const auto updates =
      one_step_updates(params, base_options().group_size(1).grouped_projections(parse_grouped_projections({"o"})));
  EXPECT_TENSOR_NEAR(updates[0], reference_newton_schulz(grads[0]) * scale_of(36, 12), 1e-10);
  EXPECT_TENSOR_NEAR(updates[1], orthogonalize_slices(grads[1], 1, head_slices(0, kSmallHeads, 1)), 1e-10);
}

TEST(GroupMuon, GqaKeyValueSegmentsWithFewerHeadsThanTheGroupStayWhole) {
  // 4 query heads, 2 key and 2 value heads; g = 4: Q whole, K whole, V whole.
  // g = 2: Q in two blocks, K and V (2 heads each) whole.
  const auto params = attention_params(/*kv_heads=*/2);
  const auto grads = gradients(params, 100);
  EXPECT_TENSOR_NEAR(one_step_updates(params, base_options().group_size(4))[0],
                     orthogonalize_slices(grads[0], 0, {{0, 12}, {12, 18}, {18, 24}}) * scale_of(24, 12), 1e-10);
  EXPECT_TENSOR_NEAR(one_step_updates(params, base_options().group_size(2))[0],
                     orthogonalize_slices(grads[0], 0, {{0, 6}, {6, 12}, {12, 18}, {18, 24}}) * scale_of(24, 12),
                     1e-10);
}

TEST(GroupMuon, BlockScaleUsesEachBlocksShape) {
  // Head-wise: QKV blocks are 3 x 12 (scale 1 instead of the whole's
  // sqrt(3)); O blocks 12 x 3 (scale 2 instead of 1).
  const auto params = attention_params();
  const auto whole_scale = one_step_updates(params, base_options().group_size(1));
  const auto block_scale = one_step_updates(params, base_options().group_size(1).block_scale(true));
  EXPECT_TENSOR_NEAR(block_scale[0], whole_scale[0] / std::sqrt(3.0), 1e-10);
  EXPECT_TENSOR_NEAR(block_scale[1], whole_scale[1] * 2.0, 1e-10);
  EXPECT_TENSOR_NEAR(block_scale[2], whole_scale[2], 1e-10);
}

TEST(GroupMuon, MomentumIsKeptWholeAcrossGroupedSteps) {
  // Three steps with Nesterov momentum: head-wise Group Muon equals the
  // reference that keeps the momentum of the whole matrix and cuts only the
  // update, so scattering blocks back never touches the buffer.
  auto params = attention_params();
  auto O_weight = params[1].tensor.detach().clone();
  Muon muon(params, base_options().momentum(0.9).nesterov(true).group_size(1));
  torch::Tensor M = torch::zeros_like(O_weight);
  for (uint64_t step = 0; step < 3; ++step) {
    const auto grads = gradients(params, 200 + 10 * step);
    for (size_t i = 0; i < params.size(); ++i) params[i].tensor.mutable_grad() = grads[i];
    muon.step();
    M = 0.9 * M + 0.1 * grads[1];
    const auto U = grads[1] + 0.9 * (M - grads[1]);
    O_weight -= 0.05 * orthogonalize_slices(U, 1, head_slices(0, kSmallHeads, 1));
  }
  EXPECT_TENSOR_NEAR(params[1].tensor.detach(), O_weight, 1e-10);
}

TEST(GroupMuon, RandomGroupingIsReproducibleFromItsSeedAndVariesWithIt) {
  const auto params = attention_params();
  const auto random = [](uint64_t seed) {
    return base_options().group_size(2).grouping_rule(GroupingRule::kRandom).grouping_seed(seed);
  };
  const auto first = one_step_updates(params, random(7));
  const auto again = one_step_updates(params, random(7));
  // (Updates are read back from weight changes, so they agree to rounding.)
  EXPECT_TENSOR_NEAR(first[0], again[0], 1e-12);
  EXPECT_TENSOR_NEAR(first[1], again[1], 1e-12);
  // Over several seeds, some Q/K/V segment or O is grouped differently.
  bool differs = false;
  for (uint64_t seed = 8; seed < 12 && !differs; ++seed) {
    const auto other = one_step_updates(params, random(seed));
    differs = !torch::allclose(other[0], first[0]) || !torch::allclose(other[1], first[1]);
  }
  EXPECT_TRUE(differs);
}

TEST(GroupMuon, RandomGroupingAppliesTheDrawnPermutationOfEachSegment) {
  // The reference draws the permutations itself, from a generator seeded
  // like Muon's, in the order Muon steps its segments (Q, K, V of the fused
  // QKV, then O): each consecutive pair of a permutation is one block.
  const uint64_t seed = 7;
  const auto params = attention_params();
  const auto grads = gradients(params, 100);
  const auto updates = one_step_updates(
      params, base_options().group_size(2).grouping_rule(GroupingRule::kRandom).grouping_seed(seed));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto draw = [&] {
    const auto perm = torch::randperm(kSmallHeads, generator, torch::dtype(torch::kLong));
    return std::vector<int64_t>(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + kSmallHeads);
  };
  const auto rows_of_heads = [](int64_t first_head, int64_t a, int64_t b) {
    return torch::cat({torch::arange((first_head + a) * kSmallHeadDim, (first_head + a + 1) * kSmallHeadDim),
                       torch::arange((first_head + b) * kSmallHeadDim, (first_head + b + 1) * kSmallHeadDim)});
  };
  bool some_block_is_not_contiguous = false;
  const auto expected_blocks = [&](const torch::Tensor& G, int64_t dim, int64_t first_head, torch::Tensor& out) {
    const auto perm = draw();
    for (size_t start : {0, 2}) {
      some_block_is_not_contiguous |= std::max(perm[start], perm[start + 1]) - std::min(perm[start], perm[start + 1]) != 1 ||
                                      std::min(perm[start], perm[start + 1]) % 2 != 0;
      const auto index = rows_of_heads(first_head, perm[start], perm[start + 1]);
      out.index_copy_(dim, index, reference_newton_schulz(G.index_select(dim, index)));
    }
  };
  auto qkv = torch::zeros_like(grads[0]);
  for (int64_t segment = 0; segment < 3; ++segment) expected_blocks(grads[0], 0, segment * kSmallHeads, qkv);
  auto o = torch::zeros_like(grads[1]);
  expected_blocks(grads[1], 1, 0, o);
  EXPECT_TENSOR_NEAR(updates[0], qkv * scale_of(36, 12), 1e-10);
  EXPECT_TENSOR_NEAR(updates[1], o, 1e-10);
  // The seed draws a grouping contiguous groups would not give, so the
  // comparison tells random grouping from contiguous.
  EXPECT_TRUE(some_block_is_not_contiguous);
}

TEST(GroupMuon, RandomGroupingResumesFromTheStateFile) {
  // Two optimizers, one saved after two steps and loaded into a fresh one
  // built with another seed: the third step draws the same groups.
  testing::ScratchDir dir;
  const auto random = [](uint64_t seed) {
    return base_options().group_size(2).grouping_rule(GroupingRule::kRandom).grouping_seed(seed);
  };
  auto params = attention_params();
  Muon muon(params, random(3));
  for (uint64_t step = 0; step < 2; ++step) {
    const auto grads = gradients(params, 300 + 10 * step);
    for (size_t i = 0; i < params.size(); ++i) params[i].tensor.mutable_grad() = grads[i];
    muon.step();
  }
  muon.save_to_file(dir.file("muon.pt"));
  auto resumed_params = attention_params();
  for (size_t i = 0; i < params.size(); ++i) {
    resumed_params[i].tensor.detach().copy_(params[i].tensor.detach());
  }
  Muon resumed(resumed_params, random(99));
  resumed.load_from_file(dir.file("muon.pt"));
  const auto grads = gradients(params, 400);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].tensor.mutable_grad() = grads[i];
    resumed_params[i].tensor.mutable_grad() = grads[i].clone();
  }
  muon.step();
  resumed.step();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i].tensor, resumed_params[i].tensor)) << params[i].name;
  }
}

TEST(GroupMuon, ErrorsNameTheParameterAndTheSetting) {
  const auto params = attention_params();
  // g = 3 does not divide the 4 heads of the fused weight's segments:
  // refused when the optimizer is made, so that no step can fail halfway,
  // after changing the parameters before this one.
  EXPECT_CONTAINS(error_message([&] { Muon(params, base_options().group_size(3)); }),
                  "Group Muon on parameter 'attn.qkv': head group size 3 does not divide segment 0");
  EXPECT_CONTAINS(error_message([&] { Muon({params[0].tensor}, base_options().group_size(2)); }),
                  "needs the parameters' head layouts");
  EXPECT_CONTAINS(error_message([&] { Muon(params, base_options().group_size(-1)); }), "group_size = -1");
}

TEST(GroupMuon, EveryTinyPresetStepsHeadWiseWithEveryProjectionGrouped) {
  // The models' own head layouts (GPT-2 fused QKV, LLaMA GQA, MLA up
  // projections and its single rotary key), through the hybrid, stay finite
  // and move every attention weight.
  for (const auto* preset : {"tiny-gpt2", "tiny-llama", "tiny-mla-moe"}) {
    SCOPED_TRACE(preset);
    torch::manual_seed(0);
    const bool gqa = std::string(preset) == "tiny-llama";
    models::Transformer model(testing::tiny_config(preset, gqa ? std::vector<std::string>{"n_kv_head=2"}
                                                               : std::vector<std::string>{}));
    const auto muon = MuonOptions(0.02).group_size(1).grouped_projections(
        parse_grouped_projections({"q", "k", "v", "o", "mla_up"}));
    MuonWithAuxAdamW optimizer(model->tagged_parameters(), muon, AdamWOptions(1e-3));
    std::vector<torch::Tensor> before;
    for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
    int64_t attention_weights = 0;
    for (const auto& p : model->tagged_parameters()) attention_weights += p.heads.has_value();
    const auto tokens = torch::randint(0, model->config().vocab_size, {2, 8}, torch::kLong);
    model->forward(tokens).logits.square().mean().backward();
    optimizer.step();
    const auto after = model->parameters();
    for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::isfinite(after[i]).all().item<bool>());
    int64_t changed = 0;
    for (const auto& p : model->tagged_parameters()) {
      if (!p.heads) continue;
      const auto index = std::find_if(after.begin(), after.end(), [&](const torch::Tensor& t) { return t.is_same(p.tensor); }) - after.begin();
      changed += !torch::equal(after[index], before[index]);
    }
    EXPECT_GT(attention_weights, 0);
    EXPECT_EQ(changed, attention_weights);
  }
}

}  // namespace
}  // namespace muonlab::optim
