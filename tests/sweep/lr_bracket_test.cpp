#include "muonlab/sweep/lr_bracket.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace muonlab::sweep {
namespace {

using testing::error_message;

TEST(LrBracket, TheBestLrsPlaceInTheGrid) {
  EXPECT_EQ(lr_bracket({{0.01, 3.0}}), LrBracket::kSingle);
  EXPECT_EQ(lr_bracket({{0.01, 3.0}, {0.02, 2.9}, {0.04, 3.1}}), LrBracket::kInside);
  EXPECT_EQ(lr_bracket({{0.01, 2.8}, {0.02, 2.9}, {0.04, 3.1}}), LrBracket::kLowEdge);
  EXPECT_EQ(lr_bracket({{0.01, 3.2}, {0.02, 2.9}, {0.04, 2.7}}), LrBracket::kHighEdge);
  // A tie goes to the smaller lr: 0.01 and 0.02 equal, so the low edge.
  EXPECT_EQ(lr_bracket({{0.01, 2.9}, {0.02, 2.9}}), LrBracket::kLowEdge);
  EXPECT_CONTAINS(error_message([] { lr_bracket({}); }), "no learning rates");
}

TEST(LrBracket, TheNextLrIsOneGeometricStepBeyondTheEdge) {
  // Ratio 2 at the top: 0.04 -> 0.08; ratio 3 at the bottom: 0.003 -> 0.001.
  EXPECT_EQ(lr_beyond_edge({{0.01, 3.2}, {0.02, 2.9}, {0.04, 2.7}}), "0.08");
  EXPECT_EQ(lr_beyond_edge({{0.003, 2.5}, {0.009, 2.6}}), "0.001");
  EXPECT_FALSE(lr_beyond_edge({{0.01, 3.0}, {0.02, 2.9}, {0.04, 3.1}}).has_value());
  EXPECT_FALSE(lr_beyond_edge({{0.01, 3.0}}).has_value());
}

TEST(LrBracket, LearningRatesAreParsedOrNamed) {
  EXPECT_DOUBLE_EQ(parse_lr("6e-3"), 0.006);
  EXPECT_DOUBLE_EQ(parse_lr("0.02"), 0.02);
  EXPECT_CONTAINS(error_message([] { parse_lr("fast"); }), "learning rate 'fast': expected a positive number");
  EXPECT_CONTAINS(error_message([] { parse_lr("0.01x"); }), "learning rate '0.01x'");
  EXPECT_CONTAINS(error_message([] { parse_lr("-1"); }), "expected a positive number");
}

}  // namespace
}  // namespace muonlab::sweep
