#include "muonlab/core/openmp_wait.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)

namespace muonlab {

namespace {

constexpr const char* kWaitPolicyVariable = "OMP_WAIT_POLICY";
constexpr const char* kSpinCountVariable = "GOMP_SPINCOUNT";
// Set beside GOMP_SPINCOUNT when muonlab chose it, so that `version` (and a
// child, which inherits both) can tell muonlab's default from the user's.
constexpr const char* kDefaultedVariable = "MUONLAB_DEFAULT_GOMP_SPINCOUNT";

}  // namespace

bool openmp_wait_chosen(const EnvironmentLookup& lookup) {
  return lookup(kWaitPolicyVariable) != nullptr || lookup(kSpinCountVariable) != nullptr;
}

void restart_with_muonlab_openmp_wait(char** argv, ExecFunction exec) {
  if (openmp_wait_chosen(std::getenv)) return;
  ::setenv(kSpinCountVariable, kMuonlabSpinCount, 1);
  ::setenv(kDefaultedVariable, "1", 1);
  exec("/proc/self/exe", argv);
  // Still here: the restart failed and libgomp keeps its own count, which
  // `version` must report; muonlab children will try for themselves.
  ::unsetenv(kSpinCountVariable);
  ::unsetenv(kDefaultedVariable);
}

std::vector<std::string> openmp_wait_settings(const EnvironmentLookup& lookup) {
  std::vector<std::string> settings;
  for (const char* name : {kWaitPolicyVariable, kSpinCountVariable}) {
    if (const char* value = lookup(name)) settings.push_back(fmt::format("{}={}", name, value));
  }
  return settings;
}

std::string describe_openmp_wait(const EnvironmentLookup& lookup) {
  const std::vector<std::string> settings = openmp_wait_settings(lookup);
  if (settings.empty()) return "libgomp's default (GOMP_SPINCOUNT=300000)";
  const bool muonlab_chose = lookup(kWaitPolicyVariable) == nullptr && lookup(kDefaultedVariable) != nullptr;
  return fmt::format("{}{}", fmt::join(settings, ", "),
                     muonlab_chose ? " (muonlab's default)" : " (from the environment)");
}

}  // namespace muonlab
