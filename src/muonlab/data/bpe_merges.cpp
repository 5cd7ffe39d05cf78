#include "muonlab/data/bpe_merges.h"

#include <functional>
#include <queue>

namespace muonlab::data {

BpeMerges::BpeMerges(const std::array<int32_t, 256>& byte_ids, const std::vector<BpeMerge>& merges)
    : byte_ids_(byte_ids) {
  ranks_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const BpeMerge& merge = merges[rank];
    ranks_.emplace(pair_key(merge.left, merge.right), Ranked{static_cast<int32_t>(rank), merge.merged});
  }
}

const BpeMerges::Ranked* BpeMerges::find(int32_t left, int32_t right) const {
  auto it = ranks_.find(pair_key(left, right));
  return it == ranks_.end() ? nullptr : &it->second;
}

std::vector<int32_t> BpeMerges::merge_by_scan(std::string_view piece) const {
  std::vector<int32_t> ids;
  ids.reserve(piece.size());
  for (char c : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);

  while (ids.size() > 1) {
    const Ranked* best = nullptr;
    int32_t best_left = 0, best_right = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const Ranked* candidate = find(ids[i], ids[i + 1]);
      if (candidate != nullptr && (best == nullptr || candidate->rank < best->rank)) {
        best = candidate;
        best_left = ids[i];
        best_right = ids[i + 1];
      }
    }
    if (best == nullptr) break;
    // Merge every occurrence of the best pair, left to right, in place.
    size_t write = 0;
    for (size_t read = 0; read < ids.size();) {
      if (read + 1 < ids.size() && ids[read] == best_left && ids[read + 1] == best_right) {
        ids[write++] = best->merged;
        read += 2;
      } else {
        ids[write++] = ids[read++];
      }
    }
    ids.resize(write);
  }
  return ids;
}

namespace {

// A mergeable adjacent pair seen at some point; it is stale once either side
// has changed, which is checked when it is popped.
struct Candidate {
  int32_t rank;
  int32_t left_position;
  int32_t left_id;
  int32_t right_id;
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : left_position > other.left_position;
  }
};

}  // namespace

std::vector<int32_t> BpeMerges::merge_by_heap(std::string_view piece) const {
  const auto n = static_cast<int32_t>(piece.size());
  // Symbols form a doubly linked list over the byte positions; a merge keeps
  // the left node, with the merged id, and unlinks the right one.
  std::vector<int32_t> id(n), prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  std::vector<Candidate> formed_lower;  // lower rank than the pass that formed them
  auto consider = [&](int32_t left, int32_t pass_rank) {
    if (left < 0 || next[left] < 0) return;
    const Ranked* ranked = find(id[left], id[next[left]]);
    if (ranked == nullptr) return;
    Candidate candidate{ranked->rank, left, id[left], id[next[left]]};
    if (ranked->rank < pass_rank) {
      formed_lower.push_back(candidate);
    } else {
      heap.push(candidate);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i, -1);

  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    const int32_t pass_rank = heap.top().rank;
    while (!heap.empty() && heap.top().rank == pass_rank) {
      Candidate candidate = heap.top();
      heap.pop();
      int32_t left = candidate.left_position, right = next[left];
      if (!alive[left] || right < 0 || id[left] != candidate.left_id || id[right] != candidate.right_id) continue;
      id[left] = find(candidate.left_id, candidate.right_id)->merged;
      alive[right] = false;
      next[left] = next[right];
      if (next[left] >= 0) prev[next[left]] = left;
      consider(prev[left], pass_rank);
      consider(left, pass_rank);
    }
    for (const auto& candidate : formed_lower) heap.push(candidate);
    formed_lower.clear();
  }
  std::vector<int32_t> ids;
  for (int32_t i = 0; i >= 0 && n > 0; i = next[i]) ids.push_back(id[i]);
  return ids;
}

void BpeMerges::apply(std::string_view piece, std::vector<int32_t>& out) const {
  // The scan is faster on the short pieces that make up almost all text.
  constexpr size_t kScanMaxBytes = 32;
  std::vector<int32_t> ids = piece.size() <= kScanMaxBytes ? merge_by_scan(piece) : merge_by_heap(piece);
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace muonlab::data
