#include "muonlab/distributed/rendezvous.h"

#include <gtest/gtest.h>

#include "muonlab/training/train_config.h"

namespace muonlab::distributed {
namespace {

std::string resolved_config_text(const std::vector<std::string>& overrides) {
  return training::format_train_config(
      training::parse_train_config("[model]\npreset = \"tiny-gpt2\"\n[data]\ntrain = \"t_*.bin\"\n", "test.toml", overrides));
}

TEST(Rendezvous, IdenticalConfigsHaveNoDifference) {
  EXPECT_FALSE(first_setting_difference(resolved_config_text({}), resolved_config_text({})).has_value());
}

TEST(Rendezvous, FirstDifferingSettingIsNamedWithBothValues) {
  const auto difference =
      first_setting_difference(resolved_config_text({"optimizer.lr=0.5", "run.steps=7"}), resolved_config_text({"run.steps=9"}));
  ASSERT_TRUE(difference.has_value());
  EXPECT_EQ(difference->key, "optimizer.lr");
  EXPECT_EQ(difference->ours, "0.5");
  EXPECT_NE(difference->theirs, "0.5");
}

TEST(Rendezvous, PathsMayDifferBetweenHosts) {
  EXPECT_FALSE(first_setting_difference(resolved_config_text({"run.out_dir=/a", "data.train=/x/*.bin"}),
                                        resolved_config_text({"run.out_dir=/b", "data.train=/y/*.bin"}))
                   .has_value());
}

TEST(Rendezvous, AKeyOnlyOneSideHasIsADifference) {
  const std::string ours = "[run]\nsteps = 5\n";
  const auto difference = first_setting_difference(ours, ours + "[extra]\nnew_key = 1\n");
  ASSERT_TRUE(difference.has_value());
  EXPECT_EQ(difference->key, "extra.new_key");
  EXPECT_EQ(difference->ours, "(absent)");
}

}  // namespace
}  // namespace muonlab::distributed
