#include "muonlab/data/bpe_merges.h"

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

void BpeMerges::apply(std::string_view piece, std::vector<int32_t>& out) const {
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
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace muonlab::data
