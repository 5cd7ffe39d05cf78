// muonlab's OpenMP wait: chosen only where the environment leaves it open,
// and reported with who chose it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "muonlab/core/openmp_wait.h"

namespace muonlab {
namespace {

EnvironmentLookup environment(const std::map<std::string, std::string>& variables) {
  return [variables](const char* name) -> const char* {
    const auto found = variables.find(name);
    return found == variables.end() ? nullptr : found->second.c_str();
  };
}

TEST(OpenMpWait, TheUsersChoiceWins) {
  EXPECT_FALSE(openmp_wait_chosen(environment({{"OMP_NUM_THREADS", "2"}})));
  EXPECT_TRUE(openmp_wait_chosen(environment({{"OMP_WAIT_POLICY", "passive"}})));
  EXPECT_TRUE(openmp_wait_chosen(environment({{"GOMP_SPINCOUNT", "300000"}})));
}

TEST(OpenMpWait, SettingsAreWhatAChildInherits) {
  EXPECT_TRUE(openmp_wait_settings(environment({{"OMP_NUM_THREADS", "2"}})).empty());
  EXPECT_EQ(openmp_wait_settings(environment({{"GOMP_SPINCOUNT", "5"}, {"OMP_WAIT_POLICY", "passive"}})),
            (std::vector<std::string>{"OMP_WAIT_POLICY=passive", "GOMP_SPINCOUNT=5"}));
}

TEST(OpenMpWait, DescribesWhoChose) {
  EXPECT_EQ(describe_openmp_wait(environment({})), "libgomp's default (GOMP_SPINCOUNT=300000)");
  EXPECT_EQ(describe_openmp_wait(environment({{"GOMP_SPINCOUNT", kMuonlabSpinCount},
                                              {"MUONLAB_DEFAULT_GOMP_SPINCOUNT", "1"}})),
            "GOMP_SPINCOUNT=10000 (muonlab's default)");
  EXPECT_EQ(describe_openmp_wait(environment({{"GOMP_SPINCOUNT", "5"}})), "GOMP_SPINCOUNT=5 (from the environment)");
  EXPECT_EQ(describe_openmp_wait(environment({{"OMP_WAIT_POLICY", "passive"}})),
            "OMP_WAIT_POLICY=passive (from the environment)");
  // A child of a muonlab process inherits the marker; a policy set on top is the user's.
  EXPECT_EQ(describe_openmp_wait(environment({{"OMP_WAIT_POLICY", "active"},
                                              {"GOMP_SPINCOUNT", kMuonlabSpinCount},
                                              {"MUONLAB_DEFAULT_GOMP_SPINCOUNT", "1"}})),
            "OMP_WAIT_POLICY=active, GOMP_SPINCOUNT=10000 (from the environment)");
}

// The restart sets the variables for the new image; if it fails, the
// environment is left as it was, so that nothing claims a count libgomp
// never read.
TEST(OpenMpWait, AFailedRestartLeavesTheEnvironmentAsItWas) {
  static std::string seen_spin_count;
  const char* saved_policy = std::getenv("OMP_WAIT_POLICY");
  const char* saved_spin = std::getenv("GOMP_SPINCOUNT");
  const std::string policy = saved_policy ? saved_policy : "", spin = saved_spin ? saved_spin : "";
  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv("GOMP_SPINCOUNT");
  char name[] = "muonlab";
  char* argv[] = {name, nullptr};
  restart_with_muonlab_openmp_wait(argv, [](const char*, char* const[]) {
    const char* value = std::getenv("GOMP_SPINCOUNT");
    seen_spin_count = value ? value : "";
    return -1;
  });
  EXPECT_EQ(seen_spin_count, kMuonlabSpinCount);
  EXPECT_EQ(std::getenv("GOMP_SPINCOUNT"), nullptr);
  EXPECT_EQ(std::getenv("MUONLAB_DEFAULT_GOMP_SPINCOUNT"), nullptr);
  if (saved_policy) ::setenv("OMP_WAIT_POLICY", policy.c_str(), 1);
  if (saved_spin) ::setenv("GOMP_SPINCOUNT", spin.c_str(), 1);
}

}  // namespace
}  // namespace muonlab
