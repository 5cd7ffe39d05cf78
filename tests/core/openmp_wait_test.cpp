// muonlab's OpenMP wait: chosen only where the environment leaves it open,
// and reported with who chose it.
#include <gtest/gtest.h>

#include <map>
#include <string>

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

}  // namespace
}  // namespace muonlab
