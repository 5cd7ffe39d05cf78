// train's note on busy cores: /proc/stat parsed by its documented fields,
// and the note given exactly when the run's threads would not fit.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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
  EXPECT_CONTAINS(oversubscription_warning(6.2, 16, 16), "OMP_NUM_THREADS=10 here");
}

TEST(CpuLoad, MeasuresThisMachine) {
  const auto busy = busy_cores(std::chrono::milliseconds(50));
  ASSERT_TRUE(busy.has_value()) << "/proc/stat unreadable";
  EXPECT_GE(*busy, 0.0);
  EXPECT_LE(*busy, std::thread::hardware_concurrency() + 0.01);
}

}  // namespace
}  // namespace muonlab
