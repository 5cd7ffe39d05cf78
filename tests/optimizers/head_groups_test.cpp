// Group Muon's head blocks: the plans are checked against head lists written
// out by hand or computed from the definitions in docs/algorithms.md (Group
// Muon), and the gathered blocks entry by entry against a matrix whose
// entries say which head and which row of that head they come from.
#include "muonlab/optimizers/head_groups.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "muonlab/models/param_tags.h"
#include "muonlab/optimizers/newton_schulz.h"
#include "test_util.h"

namespace muonlab::optim {
namespace {

using models::heads_in_cols;
using models::heads_in_rows;

constexpr int64_t kHeads = 12;
constexpr int64_t kHeadDim = 3;
constexpr int64_t kOther = 5;  // the size of the axis that does not index heads

// Entry for row `r` of head `h` at position `c` of the other axis. Exact in
// float64, and distinct for every (h, r, c) used here.
double code(int64_t h, int64_t r, int64_t c) { return 1000.0 * h + 10.0 * r + c; }

// A weight of `layout` whose entries are code(head, row-in-head, other).
torch::Tensor encoded_matrix(const HeadLayout& layout) {
  const int64_t heads_size = layout.num_heads * layout.head_dim;
  auto m = torch::empty({heads_size, kOther}, torch::kFloat64);
  auto a = m.accessor<double, 2>();
  for (int64_t i = 0; i < heads_size; ++i) {
    const int64_t head = i / layout.head_dim, row = i % layout.head_dim;
    for (int64_t c = 0; c < kOther; ++c) a[i][c] = code(head, row, c);
  }
  return layout.axis == HeadAxis::kRows ? m : m.t().contiguous();
}

// Checks that `block` stacks the heads `heads` along the layout's axis.
void expect_block_holds(const torch::Tensor& block, const HeadLayout& layout,
                        const std::vector<int64_t>& heads) {
  const auto rows = layout.axis == HeadAxis::kRows ? block : block.t();
  ASSERT_EQ(rows.size(0), static_cast<int64_t>(heads.size()) * layout.head_dim);
  ASSERT_EQ(rows.size(1), kOther);
  for (size_t t = 0; t < heads.size(); ++t) {
    for (int64_t r = 0; r < layout.head_dim; ++r) {
      for (int64_t c = 0; c < kOther; ++c) {
        ASSERT_EQ(rows[t * layout.head_dim + r][c].item<double>(), code(heads[t], r, c))
            << "head " << heads[t] << " row " << r << " col " << c;
      }
    }
  }
}

// The rules as docs/algorithms.md (Group Muon) defines them, computed
// independently of the module.
HeadBlocks contiguous_reference(int64_t n, int64_t g) {
  HeadBlocks blocks(n / g);
  for (int64_t i = 0; i < n; ++i) blocks[i / g].push_back(i);
  return blocks;
}

HeadBlocks strided_reference(int64_t n, int64_t g) {
  HeadBlocks blocks(n / g);
  for (int64_t i = 0; i < n; ++i) blocks[i % (n / g)].push_back(i);
  return blocks;
}

torch::Generator seeded_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

const std::vector<int64_t> kGroupSizes = {1, 2, 3, 4, 6, 12};
const std::vector<GroupingRule> kAllRules = {GroupingRule::kContiguous, GroupingRule::kStrided,
                                             GroupingRule::kRandom};

TEST(HeadGroups, ParsesAndNamesRules) {
  for (const auto rule : kAllRules) {
    EXPECT_EQ(parse_grouping_rule(to_string(rule)), rule);
  }
  EXPECT_EQ(to_string(GroupingRule::kStrided), "strided");
}

TEST(HeadGroups, HandWrittenPlansForTwelveHeads) {
  const auto layout = heads_in_rows(kHeads, kHeadDim);
  EXPECT_EQ(plan_head_blocks(layout, {true}, 4, GroupingRule::kContiguous),
            (HeadBlocks{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}}));
  EXPECT_EQ(plan_head_blocks(layout, {true}, 4, GroupingRule::kStrided),
            (HeadBlocks{{0, 3, 6, 9}, {1, 4, 7, 10}, {2, 5, 8, 11}}));
  EXPECT_EQ(plan_head_blocks(layout, {true}, 6, GroupingRule::kStrided),
            (HeadBlocks{{0, 2, 4, 6, 8, 10}, {1, 3, 5, 7, 9, 11}}));
}

TEST(HeadGroups, ContiguousAndStridedSelectTheRightRowsAndColumns) {
  for (const auto& layout : {heads_in_rows(kHeads, kHeadDim), heads_in_cols(kHeads, kHeadDim)}) {
    const auto m = encoded_matrix(layout);
    for (const int64_t g : kGroupSizes) {
      for (const auto rule : {GroupingRule::kContiguous, GroupingRule::kStrided}) {
        SCOPED_TRACE(fmt::format("{} g={} {}", to_string(layout.axis), g, to_string(rule)));
        const auto expected = rule == GroupingRule::kContiguous ? contiguous_reference(kHeads, g)
                                                                : strided_reference(kHeads, g);
        const auto blocks = plan_head_blocks(layout, {true}, g, rule);
        ASSERT_EQ(blocks, expected);
        const auto gathered = gather_head_blocks(m, layout, blocks);
        ASSERT_EQ(gathered.size(), expected.size());
        for (size_t b = 0; b < expected.size(); ++b) {
          expect_block_holds(gathered[b], layout, expected[b]);
        }
      }
    }
  }
}

TEST(HeadGroups, AllHeadsIsTheWholeMatrixAndOneHeadIsEachHeadsSlice) {
  for (const auto& layout : {heads_in_rows(kHeads, kHeadDim), heads_in_cols(kHeads, kHeadDim)}) {
    SCOPED_TRACE(to_string(layout.axis));
    const auto m = encoded_matrix(layout);
    const int64_t axis = layout.axis == HeadAxis::kRows ? 0 : 1;
    for (const auto rule : {GroupingRule::kContiguous, GroupingRule::kStrided}) {
      const auto whole =
          gather_head_blocks(m, layout, plan_head_blocks(layout, {true}, kHeads, rule));
      ASSERT_EQ(whole.size(), 1u);
      EXPECT_TRUE(torch::equal(whole[0], m));

      const auto heads = gather_head_blocks(m, layout, plan_head_blocks(layout, {true}, 1, rule));
      ASSERT_EQ(heads.size(), static_cast<size_t>(kHeads));
      for (int64_t h = 0; h < kHeads; ++h) {
        EXPECT_TRUE(torch::equal(heads[h], m.narrow(axis, h * kHeadDim, kHeadDim))) << "head " << h;
      }
    }
  }
}

TEST(HeadGroups, UngroupedSegmentIsOneBlock) {
  const auto layout = heads_in_rows(kHeads, kHeadDim);
  EXPECT_EQ(plan_head_blocks(layout, {false}, 4, GroupingRule::kStrided),
            contiguous_reference(kHeads, kHeads));
}

// A fused GQA QKV weight: 4 query heads, 2 key heads, 2 value heads.
HeadLayout fused_gqa_layout() { return heads_in_rows(8, kHeadDim, {4, 2, 2}); }

TEST(HeadGroups, FusedQkvGroupsOnlyTheChosenSegments) {
  const auto layout = fused_gqa_layout();
  EXPECT_EQ(plan_head_blocks(layout, {true, true, false}, 2, GroupingRule::kContiguous),
            (HeadBlocks{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(plan_head_blocks(layout, {true, true, false}, 2, GroupingRule::kStrided),
            (HeadBlocks{{0, 2}, {1, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(plan_head_blocks(layout, {true, false, false}, 1, GroupingRule::kContiguous),
            (HeadBlocks{{0}, {1}, {2}, {3}, {4, 5}, {6, 7}}));
}

TEST(HeadGroups, GatherThenScatterIsTheIdentity) {
  TaggedParam fused{"c_attn.weight", {}, ParamRole::kAttnQKV};
  fused.heads = fused_gqa_layout();
  const auto group_segment = grouped_segments(fused, parse_grouped_projections({"q", "k"}));
  ASSERT_TRUE(group_segment.has_value());
  ASSERT_EQ(*group_segment, (std::vector<bool>{true, true, false}));

  const auto generator = seeded_generator(3);
  for (const auto& layout : {*fused.heads, heads_in_cols(kHeads, kHeadDim)}) {
    const auto segments = layout.segment_heads.empty() ? std::vector<bool>{true} : *group_segment;
    const bool rows = layout.axis == HeadAxis::kRows;
    const int64_t heads_size = layout.num_heads * kHeadDim;
    const auto m = testing::random_matrix(rows ? heads_size : 7, rows ? 7 : heads_size, 11);
    for (const auto rule : kAllRules) {
      SCOPED_TRACE(fmt::format("{} {}", to_string(layout.axis), to_string(rule)));
      const auto blocks = plan_head_blocks(layout, segments, 2, rule, generator);
      const auto gathered = gather_head_blocks(m, layout, blocks);

      auto rebuilt = torch::full_like(m, std::nan(""));
      scatter_head_blocks(rebuilt, layout, blocks, gathered);
      EXPECT_TRUE(torch::equal(rebuilt, m));

      // A change made in the blocks lands on the matching rows/columns only.
      std::vector<torch::Tensor> doubled;
      for (const auto& block : gathered) doubled.push_back(block * 2);
      auto target = m.clone();
      scatter_head_blocks(target, layout, blocks, doubled);
      EXPECT_TRUE(torch::equal(target, m * 2));
    }
  }
}

// Each head of every segment exactly once, blocks of g heads inside their
// segment (or the whole segment where it is not grouped).
void expect_partition(const HeadBlocks& blocks, const std::vector<int64_t>& segments,
                      const std::vector<bool>& group_segment, int64_t g) {
  std::vector<int> count(std::accumulate(segments.begin(), segments.end(), int64_t{0}), 0);
  size_t b = 0;
  int64_t first = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    const int64_t size = group_segment[s] ? g : segments[s];
    for (int64_t k = 0; k < segments[s] / size; ++k, ++b) {
      ASSERT_LT(b, blocks.size());
      ASSERT_EQ(static_cast<int64_t>(blocks[b].size()), size);
      for (const int64_t head : blocks[b]) {
        ASSERT_GE(head, first);
        ASSERT_LT(head, first + segments[s]);
        ++count[head];
      }
    }
    first += segments[s];
  }
  EXPECT_EQ(b, blocks.size());
  EXPECT_TRUE(std::all_of(count.begin(), count.end(), [](int c) { return c == 1; }));
}

TEST(HeadGroups, RandomIsSeededFreshEachStepAndAPartition) {
  const auto layout = heads_in_rows(kHeads, kHeadDim);
  auto a = seeded_generator(42);
  auto b = seeded_generator(42);
  std::vector<HeadBlocks> steps;
  for (int step = 0; step < 4; ++step) {
    const auto from_a = plan_head_blocks(layout, {true}, 3, GroupingRule::kRandom, a);
    const auto from_b = plan_head_blocks(layout, {true}, 3, GroupingRule::kRandom, b);
    EXPECT_EQ(from_a, from_b) << "step " << step;
    expect_partition(from_a, {kHeads}, {true}, 3);
    steps.push_back(from_a);
  }
  for (size_t s = 1; s < steps.size(); ++s) EXPECT_NE(steps[s], steps[s - 1]) << "step " << s;
  // Not just the contiguous plan.
  EXPECT_NE(steps[0], contiguous_reference(kHeads, 3));

  // A different seed, a different sequence.
  auto c = seeded_generator(43);
  EXPECT_NE(plan_head_blocks(layout, {true}, 3, GroupingRule::kRandom, c), steps[0]);

  // In a fused weight, heads are shuffled within their own segment only.
  const auto fused = fused_gqa_layout();
  for (int step = 0; step < 10; ++step) {
    expect_partition(plan_head_blocks(fused, {true, true, false}, 2, GroupingRule::kRandom, a),
                     {4, 2, 2}, {true, true, false}, 2);
  }
}

NewtonSchulzConfig fp64_ns() {
  NewtonSchulzConfig config;
  config.dtype = NsDtype::kFloat64;
  return config;
}

TEST(HeadGroups, WholeMatrixNsIsBlockNsWithAllHeads) {
  for (const auto& layout : {heads_in_rows(kHeads, 8), heads_in_cols(kHeads, 8)}) {
    SCOPED_TRACE(to_string(layout.axis));
    const auto m = layout.axis == HeadAxis::kRows ? testing::random_matrix(kHeads * 8, 40, 5)
                                                  : testing::random_matrix(40, kHeads * 8, 5);
    const auto blocks = plan_head_blocks(layout, {true}, kHeads, GroupingRule::kContiguous);
    auto update = torch::zeros_like(m);
    scatter_head_blocks(update, layout, blocks,
                        {newton_schulz(gather_head_blocks(m, layout, blocks)[0], fp64_ns())});
    EXPECT_TENSOR_NEAR(update, newton_schulz(m, fp64_ns()), 1e-12);
  }
}

TEST(HeadGroups, OneHeadPerBlockNsIsPerHeadNs) {
  for (const auto& layout : {heads_in_rows(kHeads, 8), heads_in_cols(kHeads, 8)}) {
    SCOPED_TRACE(to_string(layout.axis));
    const int64_t axis = layout.axis == HeadAxis::kRows ? 0 : 1;
    const auto m = axis == 0 ? testing::random_matrix(kHeads * 8, 40, 6)
                             : testing::random_matrix(40, kHeads * 8, 6);
    // Head-wise MuonSplit, written as a loop over the heads' slices.
    auto per_head = torch::empty_like(m);
    for (int64_t h = 0; h < kHeads; ++h) {
      per_head.narrow(axis, h * 8, 8).copy_(newton_schulz(m.narrow(axis, h * 8, 8), fp64_ns()));
    }
    // The same through head blocks of g = 1, orthogonalized as one batch.
    const auto blocks = plan_head_blocks(layout, {true}, 1, GroupingRule::kContiguous);
    const auto stacked = torch::stack(gather_head_blocks(m, layout, blocks));
    const auto batched = newton_schulz(stacked, fp64_ns());
    auto grouped = torch::zeros_like(m);
    scatter_head_blocks(grouped, layout, blocks, batched.unbind(0));
    EXPECT_TENSOR_NEAR(grouped, per_head, 1e-12);
    // And it is not the whole-matrix update.
    EXPECT_GT(testing::max_abs_diff(grouped, newton_schulz(m, fp64_ns())), 1e-3);
  }
}

TEST(HeadGroups, ProjectionsChooseWhichParametersAreGrouped) {
  const auto all = parse_grouped_projections({"q", "k", "v", "o", "mla_up"});
  EXPECT_TRUE(all.q && all.k && all.v && all.o && all.mla_up);
  const auto qk = parse_grouped_projections({"q", "k"});
  EXPECT_TRUE(qk.q && qk.k && !qk.v && !qk.o && !qk.mla_up);

  const auto tagged = [](ParamRole role, std::optional<HeadLayout> heads) {
    TaggedParam p{"w", torch::Tensor(), role};
    p.heads = std::move(heads);
    return p;
  };
  const auto rows = heads_in_rows(4, 2);
  const std::vector<bool> one{true};
  EXPECT_EQ(grouped_segments(tagged(ParamRole::kAttnQ, rows), qk), one);
  EXPECT_EQ(grouped_segments(tagged(ParamRole::kAttnK, rows), qk), one);
  EXPECT_FALSE(grouped_segments(tagged(ParamRole::kAttnV, rows), qk));
  EXPECT_FALSE(grouped_segments(tagged(ParamRole::kAttnO, heads_in_cols(4, 2)), qk));
  EXPECT_EQ(grouped_segments(tagged(ParamRole::kAttnO, heads_in_cols(4, 2)), all), one);
  EXPECT_FALSE(grouped_segments(tagged(ParamRole::kMlaUp, rows), qk));
  EXPECT_EQ(grouped_segments(tagged(ParamRole::kMlaUp, rows), all), one);
  // No head layout, or not an attention weight: never grouped.
  EXPECT_FALSE(grouped_segments(tagged(ParamRole::kAttnQ, std::nullopt), all));
  EXPECT_FALSE(grouped_segments(tagged(ParamRole::kMlp, std::nullopt), all));

  const auto fused = tagged(ParamRole::kAttnQKV, fused_gqa_layout());
  EXPECT_EQ(grouped_segments(fused, qk), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(grouped_segments(fused, parse_grouped_projections({"v"})),
            (std::vector<bool>{false, false, true}));
  // Full-QKV: none of q, k, v chosen leaves the fused weight one matrix.
  EXPECT_FALSE(grouped_segments(fused, parse_grouped_projections({"o", "mla_up"})));
  EXPECT_FALSE(grouped_segments(fused, parse_grouped_projections({})));
}

// Interleaved fused QKV, read the way the models themselves read it: GPT-NeoX
// and BLOOM view the rows as [H, 3, head_dim] (each head's q, k, v rows
// together), Falcon's grouped-query attention as [H_kv, H/H_kv + 2,
// head_dim] (a unit of queries, then its key and its value).
struct InterleavedQkv {
  int64_t n_head, n_kv_head;
  HeadLayout layout() const {
    auto layout = heads_in_rows(n_head + 2 * n_kv_head, kHeadDim, {n_head, n_kv_head, n_kv_head});
    layout.interleave = n_kv_head;
    return layout;
  }
  // [H_kv, H/H_kv + 2, head_dim, other], as the model views the weight.
  torch::Tensor units(const torch::Tensor& weight) const {
    return weight.view({n_kv_head, n_head / n_kv_head + 2, kHeadDim, kOther});
  }
  // The rows of query heads [first, first + count), key heads, value heads.
  torch::Tensor queries(const torch::Tensor& weight, int64_t first, int64_t count) const {
    const int64_t per_unit = n_head / n_kv_head;
    return units(weight).narrow(1, 0, per_unit).reshape({n_head, kHeadDim, kOther}).narrow(0, first, count)
        .reshape({-1, kOther});
  }
  torch::Tensor keys(const torch::Tensor& weight) const { return units(weight).select(1, -2).reshape({-1, kOther}); }
  torch::Tensor values(const torch::Tensor& weight) const { return units(weight).select(1, -1).reshape({-1, kOther}); }
};

TEST(HeadGroups, InterleavedQkvBlocksAreTheRowsTheModelReadsForThoseHeads) {
  for (const InterleavedQkv qkv : {InterleavedQkv{4, 4}, InterleavedQkv{6, 2}, InterleavedQkv{4, 1}}) {
    SCOPED_TRACE(::testing::Message() << qkv.n_head << " query heads, " << qkv.n_kv_head << " key/value heads");
    const auto layout = qkv.layout();
    const auto weight = testing::random_matrix(layout.num_heads * kHeadDim, kOther, 7);
    // Queries in pairs, keys and values whole: blocks {0,1}, {2,3}, ..., K, V.
    const auto blocks = plan_head_blocks(layout, {true, false, false}, 2, GroupingRule::kContiguous);
    const auto gathered = gather_head_blocks(weight, layout, blocks);
    const int64_t query_blocks = qkv.n_head / 2;
    ASSERT_EQ(gathered.size(), static_cast<size_t>(query_blocks + 2));
    for (int64_t j = 0; j < query_blocks; ++j) {
      EXPECT_TRUE(torch::equal(gathered[j], qkv.queries(weight, 2 * j, 2))) << "query block " << j;
    }
    EXPECT_TRUE(torch::equal(gathered[query_blocks], qkv.keys(weight)));
    EXPECT_TRUE(torch::equal(gathered[query_blocks + 1], qkv.values(weight)));
    // Strided and random plans cover every row once: scatter restores the weight.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
    for (const auto rule : {GroupingRule::kStrided, GroupingRule::kRandom}) {
      const auto plan = plan_head_blocks(layout, {true, true, true}, 1, rule, generator);
      auto restored = torch::zeros_like(weight);
      scatter_head_blocks(restored, layout, plan, gather_head_blocks(weight, layout, plan));
      EXPECT_TRUE(torch::equal(restored, weight)) << to_string(rule);
    }
  }
}

TEST(HeadGroups, InterleaveMustDivideEverySegment) {
  using testing::error_message;
  auto layout = heads_in_rows(8, kHeadDim, {4, 2, 2});
  layout.interleave = 4;
  EXPECT_CONTAINS(error_message([&] { plan_head_blocks(layout, {true, false, false}, 2, GroupingRule::kContiguous); }),
                  "head layout interleave 4 does not divide its segment of 2 heads");
  layout.interleave = 0;
  EXPECT_CONTAINS(error_message([&] { gather_head_blocks(torch::zeros({24, kOther}), layout, {{0}}); }),
                  "head layout interleave 0: expected at least 1");
}

TEST(HeadGroups, ErrorsNameTheValue) {
  using testing::error_message;
  const auto fused = fused_gqa_layout();
  const auto not_dividing = error_message(
      [&] { plan_head_blocks(fused, {true, true, false}, 4, GroupingRule::kContiguous); });
  EXPECT_CONTAINS(not_dividing, "head group size 4 does not divide segment 1");
  EXPECT_CONTAINS(not_dividing, "2 heads");
  EXPECT_CONTAINS(error_message([&] {
                    plan_head_blocks(heads_in_rows(kHeads, kHeadDim), {true}, 5,
                                     GroupingRule::kStrided);
                  }),
                  "head group size 5 does not divide segment 0 of the head layout, "
                  "which has 12 heads");

  EXPECT_CONTAINS(error_message([&] {
                    plan_head_blocks(fused, {true, true}, 2, GroupingRule::kContiguous);
                  }),
                  "group_segment has 2 entries but the head layout has 3 segments");
  EXPECT_CONTAINS(error_message([&] {
                    plan_head_blocks(fused, {true, true, false}, 0, GroupingRule::kContiguous);
                  }),
                  "head group size must be at least 1, got 0");
  EXPECT_CONTAINS(error_message([&] {
                    plan_head_blocks(fused, {true, true, false}, 2, GroupingRule::kRandom);
                  }),
                  "'random' needs a generator");
  EXPECT_CONTAINS(error_message([] { parse_grouping_rule("blocky"); }),
                  "unknown head grouping rule 'blocky': expected contiguous, strided or random");
  EXPECT_CONTAINS(error_message([] { parse_grouped_projections({"q", "qk"}); }),
                  "unknown grouped projection 'qk': expected q, k, v, o or mla_up");

  const auto layout = heads_in_rows(kHeads, kHeadDim);
  const auto m = encoded_matrix(layout);
  EXPECT_CONTAINS(error_message([&] { gather_head_blocks(m.t(), layout, {{0}}); }),
                  "matrix of shape [5, 36] has 5 rows, but its head layout has 12 heads of 3");
  EXPECT_CONTAINS(error_message([&] { gather_head_blocks(m, layout, {{0, 12}}); }),
                  "head block lists head 12, outside the layout's 12 heads");
  EXPECT_CONTAINS(error_message([&] { gather_head_blocks(m, layout, {{0, 1}, {1}}); }),
                  "head 1 is listed in more than one head block");
  auto target = m.clone();
  EXPECT_CONTAINS(error_message([&] {
                    scatter_head_blocks(target, layout, {{0}, {1}}, {m.narrow(0, 0, 3)});
                  }),
                  "got 1 block values for 2 head blocks");
  EXPECT_CONTAINS(error_message([&] {
                    scatter_head_blocks(target, layout, {{0}}, {m.narrow(0, 0, 6)});
                  }),
                  "head block 0 has shape [6, 5], expected [3, 5]");
  EXPECT_CONTAINS(error_message([] {
                    segment_head_counts(heads_in_rows(8, 2, {4, 2, 1}));
                  }),
                  "head layout segments 4,2,1 add up to 7 heads, not num_heads = 8");

  TaggedParam two_segments{"h.0.attn.c_attn.weight", {}, ParamRole::kAttnQKV};
  two_segments.heads = heads_in_rows(6, 2, {4, 2});
  EXPECT_CONTAINS(error_message([&] {
                    grouped_segments(two_segments, parse_grouped_projections({"q"}));
                  }),
                  "fused QKV parameter 'h.0.attn.c_attn.weight' has 2 head segments");
}

}  // namespace
}  // namespace muonlab::optim
