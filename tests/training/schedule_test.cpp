// Schedules against values worked out by hand from their definitions.
#include <gtest/gtest.h>

#include <cmath>

#include "muonlab/training/schedule.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

ScheduleConfig schedule(ScheduleKind kind, int64_t warmup, double min_ratio) {
  ScheduleConfig config;
  config.kind = kind;
  config.warmup_steps = warmup;
  config.min_ratio = min_ratio;
  return config;
}

TEST(Schedule, WarmupRisesLinearlyFromOneStepsWorth) {
  auto config = schedule(ScheduleKind::kCosine, 4, 0.0);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 0, 100), 0.25);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 1, 100), 0.5);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 3, 100), 1.0);
}

TEST(Schedule, CosineFromPeakToFloor) {
  // 10 warmup steps, then steps 10..110: p = (step - 10) / 100.
  auto config = schedule(ScheduleKind::kCosine, 10, 0.1);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 10, 111), 1.0);
  EXPECT_NEAR(schedule_multiplier(config, 60, 111), 0.55, 1e-12);   // p = 1/2: the midpoint
  EXPECT_NEAR(schedule_multiplier(config, 35, 111), 0.1 + 0.9 * (1 + std::sqrt(0.5)) / 2, 1e-12);  // p = 1/4
  EXPECT_NEAR(schedule_multiplier(config, 110, 111), 0.1, 1e-12);
}

TEST(Schedule, LinearDecay) {
  auto config = schedule(ScheduleKind::kLinear, 0, 0.0);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 0, 5), 1.0);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 1, 5), 0.75);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 4, 5), 0.0);
}

TEST(Schedule, WarmupStableDecay) {
  auto config = schedule(ScheduleKind::kWsd, 5, 0.0);
  config.decay_fraction = 0.2;  // the last 20 of 100 steps: 80..99
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 5, 100), 1.0);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 79, 100), 1.0);
  EXPECT_DOUBLE_EQ(schedule_multiplier(config, 80, 100), 1.0);
  EXPECT_NEAR(schedule_multiplier(config, 99, 100), 0.0, 1e-12);
  // Step 89 is 9 of the 19 steps from 80 to 99: q = 9/19.
  EXPECT_NEAR(schedule_multiplier(config, 89, 100), 1 - 9.0 / 19, 1e-12);
  config.decay_shape = DecayShape::kSqrt;
  EXPECT_NEAR(schedule_multiplier(config, 89, 100), 1 - std::sqrt(9.0 / 19), 1e-12);
  config.decay_shape = DecayShape::kCosine;
  EXPECT_NEAR(schedule_multiplier(config, 89, 100), (1 + std::cos(M_PI * 9.0 / 19)) / 2, 1e-12);
}

TEST(Schedule, NeverIncreasesAfterWarmup) {
  for (auto kind : {ScheduleKind::kCosine, ScheduleKind::kLinear, ScheduleKind::kWsd}) {
    for (auto shape : {DecayShape::kLinear, DecayShape::kCosine, DecayShape::kSqrt}) {
      auto config = schedule(kind, 7, 0.05);
      config.decay_shape = shape;
      double previous = 1.0;
      for (int64_t step = 7; step < 200; ++step) {
        double value = schedule_multiplier(config, step, 200);
        EXPECT_LE(value, previous + 1e-15) << schedule_kind_name(kind) << " step " << step;
        EXPECT_GE(value, 0.05 - 1e-15);
        previous = value;
      }
      EXPECT_NEAR(previous, 0.05, 1e-12);
    }
  }
}

TEST(Schedule, RampForMomentum) {
  RampConfig ramp{0.85, 0.95, 300};
  EXPECT_DOUBLE_EQ(ramp_value(ramp, 0), 0.85);
  EXPECT_NEAR(ramp_value(ramp, 150), 0.90, 1e-12);
  EXPECT_DOUBLE_EQ(ramp_value(ramp, 300), 0.95);
  EXPECT_DOUBLE_EQ(ramp_value(ramp, 10000), 0.95);
  EXPECT_DOUBLE_EQ(ramp_value(RampConfig{0.5, 0.95, 0}, 0), 0.95);
}

TEST(Schedule, BadConfigsNamed) {
  EXPECT_CONTAINS(testing::error_message([] { check_schedule(schedule(ScheduleKind::kCosine, 50, 0.1), 20); }),
                  "warmup_steps = 50 is outside [0, total steps = 20]: the run is shorter than its warmup; lower schedule.warmup_steps or raise run.steps");
  EXPECT_CONTAINS(testing::error_message([] { check_schedule(schedule(ScheduleKind::kCosine, 0, 1.5), 20); }),
                  "min_ratio = 1.5 is outside [0, 1]");
  EXPECT_CONTAINS(testing::error_message([] { parse_schedule_kind("step"); }),
                  "unknown schedule 'step': expected constant, cosine, linear or wsd");
  EXPECT_CONTAINS(testing::error_message([] { parse_decay_shape("exp"); }), "unknown decay shape 'exp'");
}

}  // namespace
}  // namespace muonlab::training
