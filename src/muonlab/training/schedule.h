// Learning-rate (and weight-decay) schedules as multipliers of a peak value,
// one per optimizer group, and a linear ramp for Muon's momentum.
//
//   constant   1 after warmup
//   cosine     warmup, then min_ratio + (1 - min_ratio) * (1 + cos(pi p)) / 2
//   linear     warmup, then 1 - (1 - min_ratio) * p
//   wsd        warmup-stable-decay: warmup, 1 until the last decay_fraction
//              of the steps, then down to min_ratio with decay_shape
//              (linear, cosine, or sqrt: 1 - sqrt(q), as in the WSD papers)
//
// p runs from 0 at the end of warmup to 1 at the last step; warmup is linear
// from 1/warmup_steps at step 0 to 1 at step warmup_steps - 1, so no step
// has a learning rate of zero (nanoGPT's and llm.c's convention).
#pragma once

#include <cstdint>
#include <string>

#include "muonlab/core/enum_names.h"

namespace muonlab::training {

enum class ScheduleKind { kConstant, kCosine, kLinear, kWsd };
enum class DecayShape { kLinear, kCosine, kSqrt };

const EnumNames<ScheduleKind>& schedule_kind_names();  // "constant", "cosine", "linear", "wsd"
const EnumNames<DecayShape>& decay_shape_names();      // "linear", "cosine", "sqrt"
ScheduleKind parse_schedule_kind(const std::string& name);
DecayShape parse_decay_shape(const std::string& name);
std::string schedule_kind_name(ScheduleKind kind);
std::string decay_shape_name(DecayShape shape);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kCosine;
  int64_t warmup_steps = 0;
  double min_ratio = 0.1;        // the final multiplier
  double decay_fraction = 0.2;   // wsd: share of all steps spent decaying
  DecayShape decay_shape = DecayShape::kLinear;  // wsd only
};

// Fails naming the field and value when the config cannot describe a
// schedule over `total_steps` (e.g. warmup longer than the run).
void check_schedule(const ScheduleConfig& config, int64_t total_steps);

// The multiplier at 0-based `step` of `total_steps`.
double schedule_multiplier(const ScheduleConfig& config, int64_t step, int64_t total_steps);

// Linear ramp from `start` to `end` over `steps` steps, then `end`
// (modded-nanogpt warms Muon's momentum from 0.85 to 0.95 this way).
struct RampConfig {
  double start = 0;
  double end = 0;
  int64_t steps = 0;  // 0: always `end`
};
double ramp_value(const RampConfig& ramp, int64_t step);

}  // namespace muonlab::training
