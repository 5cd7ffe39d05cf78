// A seeded shuffle that gives the same order on every platform and standard
// library (std::shuffle and std::uniform_int_distribution do not), so a data
// order, and resuming it, does not depend on the machine.
#pragma once

#include <cstdint>
#include <vector>

namespace muonlab::data {

// splitmix64: a fast, well-mixed 64-bit generator.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), without modulo bias (rejection sampling).
  uint64_t below(uint64_t bound);

 private:
  uint64_t state_;
};

// Mixes several values into one seed: (seed, epoch, shard) -> stream seed.
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

// 0..n-1 in an order fixed by `seed` (Fisher-Yates).
std::vector<uint32_t> seeded_permutation(uint32_t n, uint64_t seed);

}  // namespace muonlab::data
