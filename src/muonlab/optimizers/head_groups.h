// Group Muon's head grouping (docs/algorithms.md, Group Muon): cut an
// attention weight into blocks of g heads, so that each block is
// orthogonalized on its own instead of the whole matrix. This module only
// plans the blocks and moves rows/columns in and out of them; Muon runs NS
// on the blocks.
//
// Everything works from a parameter's HeadLayout (param_role.h), so no module
// internals are needed: Q/K/V and MLA up-projections hold their heads in rows,
// output projections in columns, and a fused QKV weight in three row segments
// {H, H_kv, H_kv} that are grouped independently (a Q head never shares a
// block with a K head).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "muonlab/core/enum_names.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::optim {

// How a segment's heads are dealt into groups of g.
enum class GroupingRule {
  kContiguous,  // {0..g-1}, {g..2g-1}, ...
  kStrided,     // group j = {i : i mod (n/g) == j}
  kRandom,      // a fresh random permutation per call (step), then contiguous
};
const EnumNames<GroupingRule>& grouping_rule_names();  // "contiguous", "strided", "random"
GroupingRule parse_grouping_rule(const std::string& name);
std::string to_string(GroupingRule rule);

// A partition of a weight's heads into blocks; each block lists global head
// indices (into HeadLayout's num_heads, across segments) in the order their
// rows/cols are stacked.
using HeadBlocks = std::vector<std::vector<int64_t>>;

// The head count of each segment: segment_heads, or {num_heads} when it is
// empty. Fails if the segments do not add up to num_heads.
std::vector<int64_t> segment_head_counts(const HeadLayout& layout);

// Per segment of `layout`: when group_segment[s] is true, the segment's heads
// are cut into groups of `group_size` heads by `rule`, else the whole segment
// is one block. Blocks come out segment by segment. group_size must divide
// each grouped segment's head count, and group_segment must have one entry
// per segment. `generator` (a CPU generator) is used only for kRandom, and is
// required then; each call draws a fresh permutation per grouped segment, so
// successive steps see different groups, reproducibly from the seed.
HeadBlocks plan_head_blocks(const HeadLayout& layout, const std::vector<bool>& group_segment,
                            int64_t group_size, GroupingRule rule,
                            std::optional<torch::Generator> generator = std::nullopt);

// The sub-matrix of each block: for HeadAxis::kRows the block's heads' rows
// stacked (shape [len*head_dim, cols]); for kCols their columns
// ([rows, len*head_dim]). Blocks that keep the matrix's row/col order
// (contiguous grouping) are views of `matrix`, the others copies: write
// `matrix` only once the blocks have been read.
std::vector<torch::Tensor> gather_head_blocks(const torch::Tensor& matrix,
                                              const HeadLayout& layout,
                                              const HeadBlocks& blocks);

// The inverse of gather_head_blocks: writes each block back into its heads'
// rows/cols of `matrix`, in place. A valid plan covers every row/col exactly
// once, so gather then scatter is the identity.
void scatter_head_blocks(torch::Tensor& matrix, const HeadLayout& layout,
                         const HeadBlocks& blocks,
                         const std::vector<torch::Tensor>& block_values);

// Which attention projections are grouped: any of "q", "k", "v", "o",
// "mla_up". A fused QKV weight is grouped segment-wise by q/k/v; with none of
// them set it stays one matrix ("full-QKV").
struct GroupedProjections {
  bool q = false, k = false, v = false, o = false, mla_up = false;
};
GroupedProjections parse_grouped_projections(const std::vector<std::string>& names);

// For a tagged parameter (role + heads), the group_segment argument of
// plan_head_blocks, or nullopt when the parameter is not grouped: kAttnQ/K/V/O
// by their flag, kMlaUp by mla_up, kAttnQKV (segments Q, K, V) segment by
// segment by q/k/v and not at all when none of them is set. Parameters
// without a head layout or of any other role are never grouped.
std::optional<std::vector<bool>> grouped_segments(const TaggedParam& param,
                                                  const GroupedProjections& projections);

// The blocks Group Muon cuts `param` into with groups of `group_size`
// heads, or nullopt when it stays one matrix (not an attention weight, not
// grouped by `projections`, or group_size = 0). A segment of at most
// group_size heads is one block (GQA's K/V with fewer heads than g, MLA's
// single rotary key). Fails naming the parameter when group_size does not
// divide a grouped segment's head count.
std::optional<HeadBlocks> plan_param_head_blocks(const TaggedParam& param, const GroupedProjections& projections,
                                                 int64_t group_size, GroupingRule rule,
                                                 std::optional<torch::Generator> generator = std::nullopt);

}  // namespace muonlab::optim
