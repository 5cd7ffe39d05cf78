#include "muonlab/data/shuffle.h"

#include <numeric>
#include <utility>

namespace muonlab::data {

uint64_t SplitMix64::below(uint64_t bound) {
  // Reject the top sliver of the range that would favour small results.
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t value = next();
  while (value >= limit) value = next();
  return value % bound;
}

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  SplitMix64 mixer(a);
  uint64_t mixed = mixer.next() ^ b;
  mixed = SplitMix64(mixed).next() ^ c;
  return SplitMix64(mixed).next();
}

std::vector<uint32_t> seeded_permutation(uint32_t n, uint64_t seed) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  SplitMix64 random(seed);
  for (uint32_t i = n; i > 1; --i) std::swap(order[i - 1], order[random.below(i)]);
  return order;
}

}  // namespace muonlab::data
