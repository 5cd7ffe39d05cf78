// train's note on busy cores: /proc/stat parsed by its documented fields,
// and the note given exactly when the run's threads would not fit.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "muonlab/core/busy_load.h"
#include "muonlab/core/cpu_load.h"
#include "test_util.h"

namespace muonlab {
namespace {

TEST(CpuLoad, ParsesTheAllCoresLineOfProcStat) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const std::string text =
      "cpu  100 5 20 1000 7 3 2 1 50 0\n"
      "cpu0 50 2 10 500 3 1 1 0 25 0\n"
      "intr 12345\n";
  const auto times = parse_cpu_times(text);
  ASSERT_TRUE(times.has_value());
  EXPECT_EQ(times->busy, 100u + 5 + 20 + 3 + 2 + 1);  // guest time is inside user already
  EXPECT_EQ(times->total, times->busy + 1000 + 7);
  // Old kernels print four fields.
  EXPECT_EQ(parse_cpu_times("cpu 1 2 3 4\n")->total, 10u);
  EXPECT_FALSE(parse_cpu_times("cpu0 1 2 3 4\nintr 5\n").has_value());
  EXPECT_FALSE(parse_cpu_times("cpu 1 2\n").has_value());
}

TEST(CpuLoad, NotesOnlyRunsThatWouldOversubscribe) {
  EXPECT_EQ(oversubscription_warning(0.1, 2, 2), "");  // an idle machine
  EXPECT_EQ(oversubscription_warning(1.0, 1, 2), "");  // one of two parallel runs with its share
  EXPECT_EQ(oversubscription_warning(1.4, 1, 2), "");  // within half a core
  const std::string note = oversubscription_warning(1.9, 2, 2);
  EXPECT_CONTAINS(note, "1.9 of 2 cores were busy with other processes");
  EXPECT_CONTAINS(note, "OMP_NUM_THREADS=1 here");
  EXPECT_CONTAINS(note, "OMP_WAIT_POLICY=passive");
  EXPECT_CONTAINS(oversubscription_warning(6.2, 16, 16), "OMP_NUM_THREADS=10 here");
}

TEST(CpuLoad, OtherProcessesGetTheMachinesBusyTimeLessThisProcesss) {
  // 2 cores, 150 of 200 jiffies busy: 1.5 cores; this process used 0.5 s
  // of CPU in 1 s, half a core, so others used one.
  EXPECT_DOUBLE_EQ(other_busy_cores({0, 0}, {150, 200}, 0.5, 1.0, 2), 1.0);
  EXPECT_DOUBLE_EQ(other_busy_cores({100, 400}, {250, 600}, 0.0, 1.0, 2), 1.5);
  // Clock granularity can put this process's share above the machine's.
  EXPECT_DOUBLE_EQ(other_busy_cores({0, 0}, {10, 200}, 1.0, 1.0, 2), 0.0);
  EXPECT_DOUBLE_EQ(other_busy_cores({0, 0}, {0, 0}, 0.0, 1.0, 2), 0.0);  // no time passed
}

TEST(CpuLoad, SeesABusyProcessButNotItsOwnWork) {
  const BusyLoad load(1);
  const OtherProcessesLoad other;
  // Work here for 0.3 s: it is this process's, and must not count.
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  volatile double sink = 0;
  while (std::chrono::steady_clock::now() < end) sink = sink + 1;
  const auto busy = other.busy_cores();
  ASSERT_TRUE(busy.has_value()) << "/proc/stat unreadable";
  // The busy process had at least a third of a core, even beside other tests.
  EXPECT_GE(*busy, 0.3);
  // Others could at most have kept every core busy, less what this thread had.
  EXPECT_LE(*busy, std::thread::hardware_concurrency() - 0.2);
}

TEST(CpuLoad, MeasuresThisMachine) {
  const auto busy = busy_cores(std::chrono::milliseconds(50));
  ASSERT_TRUE(busy.has_value()) << "/proc/stat unreadable";
  EXPECT_GE(*busy, 0.0);
  EXPECT_LE(*busy, std::thread::hardware_concurrency() + 0.01);
}

}  // namespace
}  // namespace muonlab
