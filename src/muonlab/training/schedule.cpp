#include "muonlab/training/schedule.h"

#include <cmath>

#include "muonlab/core/errors.h"

namespace muonlab::training {
namespace {

constexpr double kPi = 3.14159265358979323846;

double decay(DecayShape shape, double progress) {
  switch (shape) {
    case DecayShape::kLinear: return 1 - progress;
    case DecayShape::kCosine: return 0.5 * (1 + std::cos(kPi * progress));
    case DecayShape::kSqrt: return 1 - std::sqrt(progress);
  }
  return 1 - progress;
}

// 0 at `first`, 1 at `last` (both inclusive); 1 when they coincide.
double progress_between(int64_t step, int64_t first, int64_t last) {
  if (last <= first) return 1;
  return static_cast<double>(step - first) / static_cast<double>(last - first);
}

}  // namespace

const EnumNames<ScheduleKind>& schedule_kind_names() {
  static const EnumNames<ScheduleKind> names{{ScheduleKind::kConstant, "constant"},
                                             {ScheduleKind::kCosine, "cosine"},
                                             {ScheduleKind::kLinear, "linear"},
                                             {ScheduleKind::kWsd, "wsd"}};
  return names;
}

const EnumNames<DecayShape>& decay_shape_names() {
  static const EnumNames<DecayShape> names{
      {DecayShape::kLinear, "linear"}, {DecayShape::kCosine, "cosine"}, {DecayShape::kSqrt, "sqrt"}};
  return names;
}

ScheduleKind parse_schedule_kind(const std::string& name) {
  return parse_enum(schedule_kind_names(), name, "schedule");
}

DecayShape parse_decay_shape(const std::string& name) {
  return parse_enum(decay_shape_names(), name, "decay shape");
}

std::string schedule_kind_name(ScheduleKind kind) { return enum_name(schedule_kind_names(), kind); }

std::string decay_shape_name(DecayShape shape) { return enum_name(decay_shape_names(), shape); }

void check_schedule(const ScheduleConfig& config, int64_t total_steps) {
  if (total_steps < 1) fail("schedule: total steps must be at least 1, got {}", total_steps);
  if (config.warmup_steps < 0) fail("schedule: warmup_steps = {}: expected 0 (no warmup) or more", config.warmup_steps);
  if (config.warmup_steps > total_steps) {
    fail("schedule: warmup_steps = {} is outside [0, total steps = {}]: the run is shorter than its warmup; lower "
         "schedule.warmup_steps or raise run.steps",
         config.warmup_steps, total_steps);
  }
  if (!(config.min_ratio >= 0 && config.min_ratio <= 1)) {
    fail("schedule: min_ratio = {} is outside [0, 1]", config.min_ratio);
  }
  if (config.kind == ScheduleKind::kWsd && !(config.decay_fraction >= 0 && config.decay_fraction <= 1)) {
    fail("schedule: decay_fraction = {} is outside [0, 1]", config.decay_fraction);
  }
}

double schedule_multiplier(const ScheduleConfig& config, int64_t step, int64_t total_steps) {
  if (step < config.warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(config.warmup_steps);
  const int64_t last = total_steps - 1;
  const double floor = config.min_ratio;
  switch (config.kind) {
    case ScheduleKind::kConstant: return 1;
    case ScheduleKind::kCosine:
      return floor + (1 - floor) * decay(DecayShape::kCosine, progress_between(step, config.warmup_steps, last));
    case ScheduleKind::kLinear:
      return floor + (1 - floor) * decay(DecayShape::kLinear, progress_between(step, config.warmup_steps, last));
    case ScheduleKind::kWsd: {
      const auto decay_steps = static_cast<int64_t>(std::llround(config.decay_fraction * total_steps));
      const int64_t decay_start = std::max(config.warmup_steps, total_steps - decay_steps);
      if (decay_steps == 0 || step < decay_start) return 1;
      return floor + (1 - floor) * decay(config.decay_shape, progress_between(step, decay_start, last));
    }
  }
  return 1;
}

double ramp_value(const RampConfig& ramp, int64_t step) {
  if (ramp.steps <= 0 || step >= ramp.steps) return ramp.end;
  const double fraction = static_cast<double>(step) / static_cast<double>(ramp.steps);
  return ramp.start + (ramp.end - ramp.start) * fraction;
}

}  // namespace muonlab::training
