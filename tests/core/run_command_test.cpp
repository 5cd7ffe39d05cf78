// run_command: output of both streams, exit status, and a program not on PATH.
#include <gtest/gtest.h>

#include "muonlab/core/run_command.h"

namespace muonlab {
namespace {

TEST(RunCommand, CollectsStdoutAndStderrAndTheExitStatus) {
  CommandResult result = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_TRUE(result.found);
  EXPECT_EQ(result.exit_status, 3);
  EXPECT_EQ(result.output, "out\nerr\n");
}

TEST(RunCommand, PassesArgumentsWithoutAShell) {
  CommandResult result = run_command({"printf", "%s|", "a b", "'$HOME'"});
  EXPECT_EQ(result.exit_status, 0);
  EXPECT_EQ(result.output, "a b|'$HOME'|");
}

TEST(RunCommand, ReportsAProgramNotOnPath) {
  CommandResult result = run_command({"muonlab-no-such-program"});
  EXPECT_FALSE(result.found);
}

}  // namespace
}  // namespace muonlab
