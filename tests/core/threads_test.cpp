// Children of sweep and launch share the cores instead of each taking all
// of them; the user's OMP_NUM_THREADS wins.
#include <gtest/gtest.h>

#include <algorithm>

#include "muonlab/core/threads.h"

namespace muonlab {
namespace {

TEST(Threads, ProcessesShareTheCoresAtLeastOneThreadEach) {
  EXPECT_EQ(threads_per_process(1, 16), 16);
  EXPECT_EQ(threads_per_process(2, 2), 1);
  EXPECT_EQ(threads_per_process(3, 16), 5);
  EXPECT_EQ(threads_per_process(32, 16), 1);
  EXPECT_EQ(threads_per_process(0, 4), 4);  // no children: nothing to share
}

TEST(Threads, ChildEnvironmentGetsItsShareUnlessTheUserChose) {
  const auto given = with_thread_budget({"PATH=/usr/bin", "HOME=/root"}, 1000000);
  EXPECT_EQ(std::count(given.begin(), given.end(), "OMP_NUM_THREADS=1"), 1);
  EXPECT_EQ(given.size(), 3u);
  const auto kept = with_thread_budget({"OMP_NUM_THREADS=7", "PATH=/usr/bin"}, 2);
  EXPECT_EQ(kept, (std::vector<std::string>{"OMP_NUM_THREADS=7", "PATH=/usr/bin"}));
}

}  // namespace
}  // namespace muonlab
