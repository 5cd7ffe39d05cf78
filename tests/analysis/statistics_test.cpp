// Statistics against values computed by hand; the p-value of the fixed
// example by numerical integration of the regularized incomplete beta
// function, quoted in the comment.
#include "muonlab/analysis/statistics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

namespace muonlab::analysis {
namespace {

using testing::error_message;

TEST(Statistics, SummaryIsTheMeanAndSampleStd) {
  const Summary s = summarize({2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0});
  EXPECT_EQ(s.n, 8);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_NEAR(s.std, std::sqrt(32.0 / 7.0), 1e-15);  // squares sum to 32
  EXPECT_EQ(summarize({3.5}).std, 0.0);
}

TEST(Statistics, PairedTTestOfAFixedExample) {
  // d = a - b = {0.1, 0.2, 0.3, 0.2, 0.2}: mean 0.2, std sqrt(0.02 / 4) =
  // 0.070711, t = 0.2 / (0.070711 / sqrt 5) = 6.3246 with 4 degrees of
  // freedom; two-sided p = I_{4/(4+t^2)}(2, 1/2) = 0.0031982 (midpoint
  // rule, 200,000 points; the t table brackets it: 4.604 at p = 0.01, 8.610
  // at p = 0.001).
  const std::vector<double> a = {3.3, 3.4, 3.5, 3.4, 3.6};
  const std::vector<double> b = {3.2, 3.2, 3.2, 3.2, 3.4};
  const PairedTTest test = paired_t_test(a, b);
  EXPECT_EQ(test.pairs, 5);
  EXPECT_NEAR(test.mean_difference, 0.2, 1e-12);
  EXPECT_NEAR(test.t, 0.2 / (std::sqrt(0.02 / 4) / std::sqrt(5.0)), 1e-9);
  EXPECT_EQ(test.degrees_of_freedom, 4);
  EXPECT_NEAR(test.p_two_sided, 0.003198, 2e-6);
  // Swapping the samples flips t, not p.
  const PairedTTest swapped = paired_t_test(b, a);
  EXPECT_NEAR(swapped.t, -test.t, 1e-12);
  EXPECT_NEAR(swapped.p_two_sided, test.p_two_sided, 1e-15);
}

TEST(Statistics, PairedTTestWithOneDegreeOfFreedomIsTheCauchyTail) {
  // df = 1: Student's t is Cauchy, two-sided p = 1 - (2 / pi) atan(|t|).
  const PairedTTest test = paired_t_test({1.0, 2.0}, {0.5, 0.5});  // d = {0.5, 1.5}
  const double t = 1.0 / (std::sqrt(0.5) / std::sqrt(2.0));  // = 2
  EXPECT_NEAR(test.t, t, 1e-12);
  EXPECT_NEAR(test.p_two_sided, 1 - 2 / M_PI * std::atan(t), 1e-12);
}

TEST(Statistics, IdenticalDifferencesAndBadSamples) {
  EXPECT_EQ(paired_t_test({1, 2, 3}, {1, 2, 3}).p_two_sided, 1.0);
  const PairedTTest constant = paired_t_test({2, 3, 4}, {1, 2, 3});
  EXPECT_TRUE(std::isinf(constant.t) && constant.t > 0);
  EXPECT_EQ(constant.p_two_sided, 0.0);
  EXPECT_CONTAINS(error_message([] { paired_t_test({1, 2}, {1}); }), "2 and 1 values");
  EXPECT_CONTAINS(error_message([] { paired_t_test({1}, {2}); }), "at least 2");
  EXPECT_CONTAINS(error_message([] { summarize({}); }), "no values");
  EXPECT_CONTAINS(error_message([] { summarize({1.0, NAN}); }), "not finite");
}

TEST(Statistics, TokensToTargetInterpolatesTheFirstCrossing) {
  const std::vector<double> tokens = {0, 100, 200, 300, 400};
  const std::vector<double> loss = {8.0, 6.0, 4.5, 3.5, 3.0};
  // 4.0 is crossed between 200 (4.5) and 300 (3.5), halfway.
  EXPECT_DOUBLE_EQ(*x_to_reach(tokens, loss, 4.0), 250.0);
  EXPECT_DOUBLE_EQ(*x_to_reach(tokens, loss, 6.0), 100.0);  // reached exactly at a point
  EXPECT_DOUBLE_EQ(*x_to_reach(tokens, loss, 9.0), 0.0);    // already below at the start
  EXPECT_FALSE(x_to_reach(tokens, loss, 2.0).has_value());
  // A curve that dips, rises and dips again: the first crossing counts.
  EXPECT_DOUBLE_EQ(*x_to_reach({0, 10, 20, 30}, {5.0, 3.0, 5.0, 2.0}, 4.0), 5.0);
  EXPECT_CONTAINS(error_message([] { x_to_reach({0, 0}, {1, 1}, 1); }), "x must increase");
}

TEST(Statistics, HolmAdjustmentMatchesTheTextbookSteps) {
  // m = 4, sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03,
  // 0.06, 0.04, then made non-decreasing: 0.02, 0.03, 0.06, 0.06.
  const std::vector<double> adjusted = holm_adjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_EQ(adjusted.size(), 4u);
  EXPECT_NEAR(adjusted[0], 0.03, 1e-15);
  EXPECT_NEAR(adjusted[1], 0.06, 1e-15);
  EXPECT_NEAR(adjusted[2], 0.06, 1e-15);
  EXPECT_NEAR(adjusted[3], 0.02, 1e-15);
  EXPECT_EQ(holm_adjust({0.3, 0.9}), (std::vector<double>{0.6, 0.9}));  // 0.3 x 2, then max(0.6, 0.9)
  EXPECT_EQ(holm_adjust({0.7, 0.8})[0], 1.0);                            // capped
  EXPECT_TRUE(holm_adjust({}).empty());
  EXPECT_CONTAINS(error_message([] { holm_adjust({1.5}); }), "not in [0, 1]");
}

TEST(Statistics, BootstrapIntervalOfAMeanMatchesTheNormalApproximation) {
  // 1000 values with mean 4.5 and std s: the bootstrap interval of the
  // mean is close to mean +- 1.96 s / sqrt(n) (central limit theorem).
  std::vector<double> values;
  for (int i = 0; i < 1000; ++i) values.push_back(i % 10);
  const Summary summary = summarize(values);
  const auto mean_of = [&](const std::vector<int64_t>& indices) {
    double sum = 0;
    for (const int64_t i : indices) sum += values[static_cast<size_t>(i)];
    return sum / static_cast<double>(indices.size());
  };
  const Interval interval = bootstrap_interval(1000, mean_of, 0.95, 4000, 7);
  const double half_width = 1.959964 * summary.std / std::sqrt(1000.0);
  EXPECT_NEAR(interval.low, summary.mean - half_width, 0.1 * half_width);
  EXPECT_NEAR(interval.high, summary.mean + half_width, 0.1 * half_width);
  // Deterministic for a seed; a constant statistic gives a point.
  const Interval again = bootstrap_interval(1000, mean_of, 0.95, 4000, 7);
  EXPECT_EQ(interval.low, again.low);
  EXPECT_EQ(interval.high, again.high);
  const Interval point = bootstrap_interval(5, [](const std::vector<int64_t>&) { return 2.5; });
  EXPECT_EQ(point.low, 2.5);
  EXPECT_EQ(point.high, 2.5);
}

TEST(Statistics, BootstrapIntervalOfTwoItemsSpansBoth) {
  // Two items 0 and 1: a resample's mean is 0, 0.5 or 1 with probabilities
  // 1/4, 1/2, 1/4, so the 95% interval runs from 0 to 1 and the 40% one
  // (quantiles 0.3 and 0.7) sits at 0.5.
  const auto mean_of = [](const std::vector<int64_t>& indices) {
    return static_cast<double>(indices[0] + indices[1]) / 2.0;
  };
  const Interval wide = bootstrap_interval(2, mean_of, 0.95, 2000, 1);
  EXPECT_EQ(wide.low, 0.0);
  EXPECT_EQ(wide.high, 1.0);
  const Interval narrow = bootstrap_interval(2, mean_of, 0.4, 2000, 1);
  EXPECT_EQ(narrow.low, 0.5);
  EXPECT_EQ(narrow.high, 0.5);
  // Non-finite resamples (a ratio over zero) are left out.
  const auto ratio = [](const std::vector<int64_t>& indices) { return 1.0 / static_cast<double>(indices[0]); };
  EXPECT_EQ(bootstrap_interval(2, ratio, 0.95, 500, 3).low, 1.0);
  EXPECT_CONTAINS(error_message([] { bootstrap_interval(0, [](const std::vector<int64_t>&) { return 0.0; }); }),
                  "no items");
  EXPECT_CONTAINS(
      error_message([] { bootstrap_interval(1, [](const std::vector<int64_t>&) { return std::nan(""); }); }),
      "not finite on any resample");
}

}  // namespace
}  // namespace muonlab::analysis
