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

}  // namespace
}  // namespace muonlab::analysis
