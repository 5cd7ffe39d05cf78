// The report's order of variants and conditions: numbers by value.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "muonlab/sweep/natural_order.h"

namespace muonlab::sweep {
namespace {

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end(), NaturalLess());
  return names;
}

TEST(NaturalOrder, NumbersInNamesCompareByValue) {
  EXPECT_EQ(sorted({"g12", "g2", "g6", "g1"}), (std::vector<std::string>{"g1", "g2", "g6", "g12"}));
  EXPECT_EQ(sorted({"muon-k10", "muon-k3", "muon", "muon-k5"}),
            (std::vector<std::string>{"muon", "muon-k3", "muon-k5", "muon-k10"}));
}

TEST(NaturalOrder, ConditionsOrderByBatchSizeNotByText) {
  const std::vector<std::string> conditions = {
      "data.batch_size=16, run.steps=200", "data.batch_size=32, run.steps=100",
      "data.batch_size=4, run.steps=800", "data.batch_size=8, run.steps=400"};
  EXPECT_EQ(sorted(conditions),
            (std::vector<std::string>{"data.batch_size=4, run.steps=800", "data.batch_size=8, run.steps=400",
                                      "data.batch_size=16, run.steps=200", "data.batch_size=32, run.steps=100"}));
}

TEST(NaturalOrder, DecimalsAndExponentsCompareByValue) {
  EXPECT_EQ(sorted({"wd=0.1", "wd=0.05", "wd=0.00075", "wd=0.0015", "wd=1e-4", "wd=2.5e-2"}),
            (std::vector<std::string>{"wd=1e-4", "wd=0.00075", "wd=0.0015", "wd=2.5e-2", "wd=0.05", "wd=0.1"}));
  // A dot that starts no fraction, and an 'e' that starts no exponent, are text.
  EXPECT_TRUE(natural_less("v1.x", "v1.y"));
  EXPECT_TRUE(natural_less("run.seed=2, extra", "run.seed=10, extra"));
}

TEST(NaturalOrder, IsAStrictWeakOrder) {
  const std::vector<std::string> names = {"a", "a1", "a01", "a1.0", "a2", "a10", "b", "", "1e-3", "0.001", "a1b", "a1a"};
  for (const auto& x : names) {
    EXPECT_FALSE(natural_less(x, x)) << x;
    for (const auto& y : names) {
      if (natural_less(x, y)) EXPECT_FALSE(natural_less(y, x)) << x << " vs " << y;
      for (const auto& z : names) {
        if (natural_less(x, y) && natural_less(y, z)) EXPECT_TRUE(natural_less(x, z)) << x << " < " << y << " < " << z;
      }
    }
  }
  // Equal values written differently are still ordered, one way only.
  EXPECT_NE(natural_less("a1", "a01"), natural_less("a01", "a1"));
}

}  // namespace
}  // namespace muonlab::sweep
