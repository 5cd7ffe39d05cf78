// Byte-pair merging within one pre-token, as OpenAI's GPT-2 encoder does it:
// start from one id per byte, then repeatedly take the adjacent pair with the
// lowest merge rank and merge every occurrence of it, left to right, until no
// adjacent pair has a rank.
//
// That loop rescans the piece once per merge applied, which is quadratic on
// long pieces (a 64 KB word took 2.5 s); pieces longer than a few dozen bytes
// go through a heap of candidate pairs instead, O(n log n), with the same
// result: it pops pairs by (rank, position) and finishes one rank's pass
// before any pair of a lower rank formed during it, as the loop does.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace muonlab::data {

struct BpeMerge {
  int32_t left;
  int32_t right;
  int32_t merged;
};

class BpeMerges {
 public:
  // `merges` in rank order: merges[0] is applied first.
  BpeMerges(const std::array<int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges);

  // Appends the ids of `piece` to `out`.
  void apply(std::string_view piece, std::vector<int32_t>& out) const;

  // The two strategies `apply` chooses between; public so tests can hold
  // one against the other.
  std::vector<int32_t> merge_by_scan(std::string_view piece) const;
  std::vector<int32_t> merge_by_heap(std::string_view piece) const;

 private:
  struct Ranked {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Ranked* find(int32_t left, int32_t right) const;

  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<uint64_t, Ranked> ranks_;
};

}  // namespace muonlab::data
