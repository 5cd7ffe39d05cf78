#pragma once

namespace muonlab {

// Debian's LibTorch 1.13 starts with one intra-op thread whatever the
// machine has. Use every core unless OMP_NUM_THREADS says otherwise.
// Returns the thread count in force.
int use_all_cores_unless_told();

}  // namespace muonlab
