// How OpenMP's idle threads wait in a muonlab process, and muonlab's default.
//
// libgomp's threads spin GOMP_SPINCOUNT times (300,000 unless told) at each
// barrier and between parallel regions before they sleep. On an idle machine
// that saves a wake-up per region; beside another busy process it backfires:
// a spinning thread uses up its time slice, the kernel then favours the busy
// process, and every region waits for a descheduled team member. One busy
// process on 2 cores made a training step 4-15x slower with libgomp's count,
// 2.5x with 10,000, at a cost of 1-2% on the idle machine (docs/benchmarks.md,
// beside a background load). muonlab's commands that compute therefore run
// with GOMP_SPINCOUNT=10000 unless the environment chooses (GOMP_SPINCOUNT or
// OMP_WAIT_POLICY): the waiting changes no result, only who gets the cores.
//
// libgomp reads these variables once, when it is loaded, before main: a
// process can only change them by starting again.
#pragma once

#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace muonlab {

inline constexpr const char* kMuonlabSpinCount = "10000";

// Looks up an environment variable; nullptr when it is not set.
using EnvironmentLookup = std::function<const char*(const char*)>;

// Whether the environment says how OpenMP threads wait (OMP_WAIT_POLICY or
// GOMP_SPINCOUNT set).
bool openmp_wait_chosen(const EnvironmentLookup& lookup);

// Replaces this process's image (execv's signature); returns only on failure.
using ExecFunction = int (*)(const char* path, char* const argv[]);

// Where the environment does not choose, sets GOMP_SPINCOUNT to muonlab's
// count and runs this executable again with the same arguments, in this
// process (same pid, so a parent waiting on it is not disturbed). Returns
// only when there was nothing to do or the restart failed; then libgomp
// keeps its own count and the environment is as it was, so that it says so.
void restart_with_muonlab_openmp_wait(char** argv, ExecFunction exec = ::execv);

// The environment's settings of how OpenMP threads wait, as "NAME=value"
// (OMP_WAIT_POLICY, then GOMP_SPINCOUNT; none when neither is set): what a
// child process inherits.
std::vector<std::string> openmp_wait_settings(const EnvironmentLookup& lookup);

// How this process's OpenMP threads wait, and who chose it, for `version`:
// "GOMP_SPINCOUNT=10000 (muonlab's default)".
std::string describe_openmp_wait(const EnvironmentLookup& lookup);

}  // namespace muonlab
