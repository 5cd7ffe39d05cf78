// The head layouts the models' tags declare are the heads the forward pass
// uses. Permuting attention heads is a symmetry of attention: reorder the
// query heads (keeping each with its key/value head) in every weight, as
// the tags say where each head's rows or columns lie, and the logits must
// not change. A layout that put one head's rows elsewhere (interleaved Q/K/V,
// a wrong head_dim, a segment in the wrong place) would mix heads and change
// them. This is what Group Muon's blocks rely on.
#include <gtest/gtest.h>

#include <numeric>

#include "models/model_test_util.h"
#include "muonlab/models/transformer.h"
#include "test_util.h"

namespace muonlab::models {
namespace {

using optim::HeadAxis;
using testing::tiny_config;

// The permutations of a query-head swap: key/value heads 0 and 1 trade
// places, and with them their groups of n_head / kv_heads query heads.
struct HeadSwap {
  std::vector<int64_t> query, key_value;  // new position -> old head
};

HeadSwap swap_first_two_kv_groups(const ModelConfig& config) {
  const int64_t heads = config.n_head, kv_heads = config.kv_heads(), group = heads / kv_heads;
  HeadSwap swap{std::vector<int64_t>(heads), std::vector<int64_t>(kv_heads)};
  std::iota(swap.query.begin(), swap.query.end(), int64_t{0});
  std::iota(swap.key_value.begin(), swap.key_value.end(), int64_t{0});
  std::swap(swap.key_value[0], swap.key_value[1]);
  for (int64_t t = 0; t < group; ++t) std::swap(swap.query[t], swap.query[group + t]);
  return swap;
}

// The row (or column) index that moves each of the layout's heads, segment
// by segment, by the permutation that fits the segment's head count. Built
// from head_dim alone: head h holds [h * head_dim, (h + 1) * head_dim).
torch::Tensor permuted_index(const optim::HeadLayout& layout, const HeadSwap& swap) {
  const std::vector<int64_t> segments =
      layout.segment_heads.empty() ? std::vector<int64_t>{layout.num_heads} : layout.segment_heads;
  std::vector<torch::Tensor> pieces;
  int64_t first = 0;
  for (const int64_t n : segments) {
    const bool is_query = n == static_cast<int64_t>(swap.query.size());
    const bool is_key_value = n == static_cast<int64_t>(swap.key_value.size());
    const bool is_shared = n == 1;  // MLA's decoupled RoPE key, one for all heads: stays
    EXPECT_TRUE(is_query || is_key_value || is_shared)
        << "a segment of " << n << " heads is neither queries, keys/values nor shared";
    for (int64_t h = 0; h < n; ++h) {
      const int64_t local = is_query ? swap.query[static_cast<size_t>(h)]
                            : is_key_value ? swap.key_value[static_cast<size_t>(h)]
                                           : h;
      const int64_t old_head = first + local;
      pieces.push_back(torch::arange(old_head * layout.head_dim, (old_head + 1) * layout.head_dim));
    }
    first += n;
  }
  return torch::cat(pieces);
}

// Applies the swap to every tagged attention weight (and its bias, which
// shares the weight's rows); `only`: just the parameters named so.
void permute_heads(const Transformer& model, const HeadSwap& swap, const std::string& only = "") {
  torch::NoGradGuard no_grad;
  const auto named = model->named_parameters();
  for (const auto& tagged : model->tagged_parameters()) {
    if (!tagged.heads || (!only.empty() && tagged.name != only)) continue;
    const int64_t dim = tagged.heads->axis == HeadAxis::kRows ? 0 : 1;
    ASSERT_EQ(tagged.heads->num_heads * tagged.heads->head_dim, tagged.tensor.size(dim)) << tagged.name;
    const auto index = permuted_index(*tagged.heads, swap);
    tagged.tensor.copy_(tagged.tensor.index_select(dim, index));
    const std::string suffix = ".weight";
    if (dim == 0 && tagged.name.size() > suffix.size() &&
        tagged.name.compare(tagged.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string bias_name = tagged.name.substr(0, tagged.name.size() - suffix.size()) + ".bias";
      if (const torch::Tensor* bias = named.find(bias_name)) bias->copy_(bias->index_select(0, index));
    }
  }
}

torch::Tensor logits_of(Transformer& model, const torch::Tensor& tokens) {
  torch::NoGradGuard no_grad;
  return model->forward(tokens).logits;
}

void expect_head_swap_is_a_symmetry(const ModelConfig& config, const std::string& o_projection) {
  torch::manual_seed(0);
  Transformer model(config);
  model->to(torch::kFloat64);
  model->eval();
  const auto tokens = torch::randint(config.vocab_size, {2, 12});
  const auto before = logits_of(model, tokens);
  const HeadSwap swap = swap_first_two_kv_groups(config);
  int64_t laid_out = 0;
  for (const auto& tagged : model->tagged_parameters()) laid_out += tagged.heads.has_value();
  ASSERT_GE(laid_out, 2) << "no attention weights carry a head layout";

  permute_heads(model, swap);
  EXPECT_TENSOR_NEAR(logits_of(model, tokens), before, 1e-10);

  // The check can fail: moving the heads of one output projection alone
  // (its columns no longer meet the matching values) changes the logits.
  permute_heads(model, swap, o_projection);
  EXPECT_GT((logits_of(model, tokens) - before).abs().max().item<double>(), 1e-6);
}

TEST(HeadLayoutForward, Gpt2FusedQkvHeadsAreTheHeadsAttentionUses) {
  expect_head_swap_is_a_symmetry(tiny_config("tiny-gpt2"), "h.0.attn.c_proj.weight");
}

TEST(HeadLayoutForward, GqaQueryGroupsFollowTheirKeyValueHeads) {
  const auto config = tiny_config("tiny-llama", {"n_kv_head=2"});
  ASSERT_EQ(config.kv_heads(), 2);
  Transformer probe(config);
  std::string o_projection;
  for (const auto& tagged : probe->tagged_parameters()) {
    if (tagged.role == optim::ParamRole::kAttnO && o_projection.empty()) o_projection = tagged.name;
  }
  expect_head_swap_is_a_symmetry(config, o_projection);
}

TEST(HeadLayoutForward, MlaUpProjectionHeadsAreTheHeadsAttentionUses) {
  const auto config = tiny_config("tiny-mla-moe");
  Transformer probe(config);
  std::string o_projection;
  for (const auto& tagged : probe->tagged_parameters()) {
    if (tagged.role == optim::ParamRole::kAttnO && o_projection.empty()) o_projection = tagged.name;
  }
  expect_head_swap_is_a_symmetry(config, o_projection);
}

}  // namespace
}  // namespace muonlab::models
