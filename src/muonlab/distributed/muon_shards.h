// Distributed Muon's division of labour (ZeRO-1): which rank orthogonalizes
// and keeps the state of each of Muon's matrices, and where each matrix
// lies in the flat buffers the collectives move.
//
// Whole matrices are the unit, so Group Muon's head blocks of one matrix
// stay on one rank. Matrices go, largest first, to the least-loaded rank
// (by elements, a proxy for NS work). Each rank's share is one contiguous
// segment of the buffer, padded to the largest share's size, because the
// collectives move equal chunks: any number of matrices, any world size
// (even more ranks than matrices) works, at the cost of the padding.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace muonlab::distributed {

struct MuonShardPlan {
  int64_t world_size = 1;
  std::vector<torch::Tensor> params;  // Muon's matrices, in the optimizer's order
  std::vector<int64_t> owner;         // per matrix: the rank that steps it
  std::vector<int64_t> offset;        // per matrix: where it starts in its owner's segment
  std::vector<int64_t> share;         // per rank: elements it owns
  int64_t segment = 0;                // every rank's segment, padded: max of share

  bool owns(int64_t rank, size_t index) const { return owner[index] == rank; }
  // Elements of padding in the buffer of all segments (world_size x segment).
  int64_t padding() const;
};

MuonShardPlan plan_muon_shards(const std::vector<torch::Tensor>& params, int64_t world_size);

// world_size x segment elements (dtype and device of the first matrix's
// value): each matrix's `value(i)` at its owner's segment and offset, zeros
// in the padding.
torch::Tensor pack_segments(const MuonShardPlan& plan, const std::function<torch::Tensor(size_t)>& value);

// `rank`'s segment alone (segment elements), packed the same way.
torch::Tensor pack_segment(const MuonShardPlan& plan, int64_t rank, const std::function<torch::Tensor(size_t)>& value);

// Matrix `index`'s elements in a buffer of all segments, shaped like it.
torch::Tensor slice_of(const MuonShardPlan& plan, const torch::Tensor& segments, size_t index);

}  // namespace muonlab::distributed
