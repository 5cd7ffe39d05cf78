// sort_assignments against a plain walk over the tokens: which (token,
// expert) pairs each expert keeps under a capacity, in which order, and the
// two ways of leaving out the rest (removed where the dispatch reads counts
// on the host; kept with a zero gate where it must not sync).
#include <gtest/gtest.h>

#include <vector>

#include "muonlab/models/expert_dispatch.h"

namespace muonlab::models {
namespace {

struct Assignment {
  int64_t token, expert;
  double gate;
  bool kept;
};

// Expert by expert, the assignments in token order, each marked kept when
// fewer than `capacity` earlier tokens chose its expert.
std::vector<Assignment> walk_in_token_order(const torch::Tensor& chosen, const torch::Tensor& gates,
                                            int64_t num_experts, int64_t capacity) {
  std::vector<Assignment> sorted;
  for (int64_t e = 0; e < num_experts; ++e) {
    int64_t taken = 0;
    for (int64_t t = 0; t < chosen.size(0); ++t) {
      for (int64_t j = 0; j < chosen.size(1); ++j) {
        if (chosen[t][j].item<int64_t>() != e) continue;
        sorted.push_back({t, e, gates[t][j].item<double>(), capacity == 0 || taken++ < capacity});
      }
    }
  }
  return sorted;
}

class SortAssignments : public ::testing::Test {
 protected:
  static constexpr int64_t kTokens = 16, kTopK = 2, kExperts = 4, kCapacity = 6;

  void SetUp() override {
    torch::manual_seed(41);
    // Skewed toward expert 0 so that it overflows; top-k picks distinct experts.
    const auto scores = torch::rand({kTokens, kExperts}, torch::kFloat64) +
                        torch::tensor({0.6, 0.0, 0.0, 0.0}, torch::kFloat64);
    std::tie(gates, chosen) = scores.topk(kTopK, -1);
    expected = walk_in_token_order(chosen, gates, kExperts, kCapacity);
  }

  int64_t expected_dropped() const {
    int64_t dropped = 0;
    for (const auto& a : expected) dropped += a.kept ? 0 : 1;
    return dropped;
  }

  torch::Tensor gates, chosen;
  std::vector<Assignment> expected;
};

TEST_F(SortAssignments, WithHostCountsTheOverflowIsRemoved) {
  const auto a = sort_assignments(chosen, gates, kExperts, kCapacity, /*counts_on_host=*/true);
  ASSERT_GT(expected_dropped(), 0) << "the routing must overflow an expert for this test";
  EXPECT_EQ(a.dropped.item<int64_t>(), expected_dropped());

  std::vector<Assignment> kept;
  for (const auto& e : expected) {
    if (e.kept) kept.push_back(e);
  }
  ASSERT_EQ(a.token_ids.size(0), static_cast<int64_t>(kept.size()));
  std::vector<int64_t> sizes(kExperts, 0);
  for (size_t i = 0; i < kept.size(); ++i) {
    SCOPED_TRACE("assignment " + std::to_string(i));
    EXPECT_EQ(a.token_ids[i].item<int64_t>(), kept[i].token);
    EXPECT_EQ(a.experts[i].item<int64_t>(), kept[i].expert);
    EXPECT_EQ(a.slots[i].item<int64_t>(), sizes[kept[i].expert]++);
    EXPECT_EQ(a.gates[i].item<double>(), kept[i].gate);
  }
  EXPECT_EQ(a.counts, sizes);
  EXPECT_TRUE(torch::equal(a.group_sizes, torch::tensor(sizes)));
}

TEST_F(SortAssignments, WithoutHostCountsTheOverflowStaysWithAZeroGate) {
  const auto a = sort_assignments(chosen, gates, kExperts, kCapacity, /*counts_on_host=*/false);
  EXPECT_TRUE(a.counts.empty());
  EXPECT_EQ(a.dropped.item<int64_t>(), expected_dropped());

  ASSERT_EQ(a.token_ids.size(0), kTokens * kTopK);
  std::vector<int64_t> sizes(kExperts, 0);
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("assignment " + std::to_string(i));
    EXPECT_EQ(a.token_ids[i].item<int64_t>(), expected[i].token);
    EXPECT_EQ(a.experts[i].item<int64_t>(), expected[i].expert);
    EXPECT_EQ(a.slots[i].item<int64_t>(), sizes[expected[i].expert]++);
    EXPECT_EQ(a.gates[i].item<double>(), expected[i].kept ? expected[i].gate : 0.0);
  }
  // The groups hold every routed assignment, dropped ones included.
  EXPECT_TRUE(torch::equal(a.group_sizes, torch::tensor(sizes)));
  EXPECT_TRUE(torch::equal(a.group_sizes, a.routed_counts));
}

TEST_F(SortAssignments, DroplessKeepsEverythingEitherWay) {
  for (const bool on_host : {true, false}) {
    SCOPED_TRACE(on_host ? "counts on host" : "counts on device");
    const auto a = sort_assignments(chosen, gates, kExperts, 0, on_host);
    EXPECT_EQ(a.dropped.item<int64_t>(), 0);
    ASSERT_EQ(a.gates.size(0), kTokens * kTopK);
    const auto dropless = walk_in_token_order(chosen, gates, kExperts, 0);
    for (size_t i = 0; i < dropless.size(); ++i) {
      EXPECT_EQ(a.token_ids[i].item<int64_t>(), dropless[i].token) << "assignment " << i;
      EXPECT_EQ(a.gates[i].item<double>(), dropless[i].gate) << "assignment " << i;
    }
  }
}

}  // namespace
}  // namespace muonlab::models
