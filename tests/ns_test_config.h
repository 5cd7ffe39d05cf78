// A Newton-Schulz config from a coefficient preset, K and dtype (float64 by
// default, to compare against references), for the tests of NS users.
#pragma once

#include <string>

#include "muonlab/optimizers/newton_schulz.h"

namespace muonlab::testing {

inline optim::NewtonSchulzConfig ns_config(const std::string& preset, int64_t steps,
                                           optim::NsDtype dtype = optim::NsDtype::kFloat64) {
  optim::NewtonSchulzConfig config;
  config.schedule = optim::ns_schedule(preset);
  config.steps = steps;
  config.dtype = dtype;
  return config;
}

}  // namespace muonlab::testing
