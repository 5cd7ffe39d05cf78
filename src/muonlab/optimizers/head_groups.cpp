#include "muonlab/optimizers/head_groups.h"

#include <fmt/ranges.h>

#include <numeric>

#include "muonlab/core/errors.h"
#include "muonlab/core/queued_copy.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

const EnumNames<GroupingRule>& grouping_rule_names() {
  static const EnumNames<GroupingRule> names{
      {GroupingRule::kContiguous, "contiguous"}, {GroupingRule::kStrided, "strided"}, {GroupingRule::kRandom, "random"}};
  return names;
}

GroupingRule parse_grouping_rule(const std::string& name) {
  return parse_enum(grouping_rule_names(), name, "head grouping rule");
}

std::string to_string(GroupingRule rule) { return enum_name(grouping_rule_names(), rule); }

std::vector<int64_t> segment_head_counts(const HeadLayout& layout) {
  layout.validate();
  if (layout.segment_heads.empty()) return {layout.num_heads};
  return layout.segment_heads;
}

namespace {

// The order in which a segment's n local heads are dealt into groups of g:
// consecutive runs of g in this order form the groups.
std::vector<int64_t> dealing_order(int64_t n, int64_t g, GroupingRule rule,
                                   std::optional<torch::Generator>& generator) {
  std::vector<int64_t> order(n);
  switch (rule) {
    case GroupingRule::kContiguous:
      std::iota(order.begin(), order.end(), int64_t{0});
      break;
    case GroupingRule::kStrided: {
      // Group j takes j, j + n/g, j + 2n/g, ...: listing the groups one after
      // another gives position j*g + t -> head j + t*(n/g).
      const int64_t groups = n / g;
      for (int64_t j = 0; j < groups; ++j) {
        for (int64_t t = 0; t < g; ++t) order[j * g + t] = j + t * groups;
      }
      break;
    }
    case GroupingRule::kRandom: {
      const auto perm = torch::randperm(n, *generator, torch::dtype(torch::kLong));
      const auto* data = perm.data_ptr<int64_t>();
      order.assign(data, data + n);
      break;
    }
  }
  return order;
}

void check_plan_arguments(const std::vector<int64_t>& segments,
                          const std::vector<bool>& group_segment, int64_t group_size,
                          GroupingRule rule, const std::optional<torch::Generator>& generator) {
  if (group_segment.size() != segments.size()) {
    fail("group_segment has {} entries but the head layout has {} segments ({} heads)",
         group_segment.size(), segments.size(), fmt::join(segments, ","));
  }
  if (group_size < 1) fail("head group size must be at least 1, got {}", group_size);
  if (rule == GroupingRule::kRandom && !generator.has_value()) {
    fail("head grouping rule 'random' needs a generator");
  }
  for (size_t s = 0; s < segments.size(); ++s) {
    if (group_segment[s] && segments[s] % group_size != 0) {
      fail("head group size {} does not divide segment {} of the head layout, which has {} heads",
           group_size, s, segments[s]);
    }
  }
}

// The axis of the matrix that indexes heads.
int64_t head_dim_of(const HeadLayout& layout) { return layout.axis == HeadAxis::kRows ? 0 : 1; }

void check_matrix(const torch::Tensor& matrix, const HeadLayout& layout) {
  layout.validate();
  if (matrix.dim() != 2) {
    fail("head blocks need a 2-D matrix, got shape {}", shape_string(matrix.sizes()));
  }
  const int64_t axis = head_dim_of(layout);
  if (matrix.size(axis) != layout.num_heads * layout.head_dim) {
    fail("matrix of shape {} has {} {}, but its head layout has {} heads of {}",
         shape_string(matrix.sizes()), matrix.size(axis), axis == 0 ? "rows" : "columns",
         layout.num_heads, layout.head_dim);
  }
}

// Every head in range and none listed twice: a head in two blocks would make
// scatter's result depend on the block order.
void check_blocks(const HeadLayout& layout, const HeadBlocks& blocks) {
  std::vector<bool> seen(layout.num_heads, false);
  for (const auto& block : blocks) {
    for (const int64_t head : block) {
      if (head < 0 || head >= layout.num_heads) {
        fail("head block lists head {}, outside the layout's {} heads", head, layout.num_heads);
      }
      if (seen[head]) fail("head {} is listed in more than one head block", head);
      seen[head] = true;
    }
  }
}

}  // namespace

HeadBlocks plan_head_blocks(const HeadLayout& layout, const std::vector<bool>& group_segment,
                            int64_t group_size, GroupingRule rule,
                            std::optional<torch::Generator> generator) {
  const auto segments = segment_head_counts(layout);
  check_plan_arguments(segments, group_segment, group_size, rule, generator);
  HeadBlocks blocks;
  int64_t first_head = 0;  // global index of the segment's head 0
  for (size_t s = 0; s < segments.size(); ++s) {
    const int64_t n = segments[s];
    // An ungrouped segment is one group of all its heads, in order.
    const int64_t g = group_segment[s] ? group_size : n;
    const auto order = group_segment[s] ? dealing_order(n, g, rule, generator)
                                        : dealing_order(n, n, GroupingRule::kContiguous, generator);
    for (int64_t start = 0; start < n; start += g) {
      std::vector<int64_t> block;
      for (int64_t t = start; t < start + g; ++t) block.push_back(first_head + order[t]);
      blocks.push_back(std::move(block));
    }
    first_head += n;
  }
  return blocks;
}

namespace {

// The rows/cols of each block's heads, block after block.
std::vector<int64_t> head_rows_or_cols(const HeadLayout& layout, const HeadBlocks& blocks) {
  std::vector<int64_t> index;
  for (const auto& block : blocks) {
    for (const int64_t head : block) {
      for (int64_t i = layout.begin_of(head); i < layout.end_of(head); ++i) index.push_back(i);
    }
  }
  return index;
}

std::vector<int64_t> head_block_widths(const HeadLayout& layout, const HeadBlocks& blocks) {
  std::vector<int64_t> widths;
  for (const auto& block : blocks) {
    int64_t width = 0;
    for (const int64_t head : block) width += layout.end_of(head) - layout.begin_of(head);
    widths.push_back(width);
  }
  return widths;
}

// Blocks that list every row/col in order (contiguous grouping, or one
// block of all heads) need no index: the blocks are slices of the matrix.
bool in_matrix_order(const std::vector<int64_t>& index) {
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// The index on the matrix's device, queued: a plain copy to a GPU would be
// a host sync per grouped weight per step.
torch::Tensor head_index_tensor(const std::vector<int64_t>& index, const torch::Device& device) {
  return queued_copy_to(torch::tensor(index, torch::dtype(torch::kLong)), device);
}

}  // namespace

// One index_select for all blocks (one copy, one index sent to the device),
// then the blocks as slices of it: a GPU step with many small blocks pays
// for one gather, not one per block. Blocks in the matrix's own order are
// slices of the matrix itself, with no copy.
std::vector<torch::Tensor> gather_head_blocks(const torch::Tensor& matrix,
                                              const HeadLayout& layout,
                                              const HeadBlocks& blocks) {
  check_matrix(matrix, layout);
  check_blocks(layout, blocks);
  const int64_t axis = head_dim_of(layout);
  const auto index = head_rows_or_cols(layout, blocks);
  const auto gathered = in_matrix_order(index) ? matrix : matrix.index_select(axis, head_index_tensor(index, matrix.device()));
  return gathered.split_with_sizes(head_block_widths(layout, blocks), axis);
}

// The blocks joined (one copy, cast once) and written back with one
// index_copy_ (or one copy_, when the blocks are in the matrix's order).
void scatter_head_blocks(torch::Tensor& matrix, const HeadLayout& layout,
                         const HeadBlocks& blocks,
                         const std::vector<torch::Tensor>& block_values) {
  check_matrix(matrix, layout);
  check_blocks(layout, blocks);
  if (block_values.size() != blocks.size()) {
    fail("scatter_head_blocks got {} block values for {} head blocks", block_values.size(),
         blocks.size());
  }
  if (blocks.empty()) return;
  const int64_t axis = head_dim_of(layout);
  const auto widths = head_block_widths(layout, blocks);
  for (size_t b = 0; b < blocks.size(); ++b) {
    auto expected = matrix.sizes().vec();
    expected[axis] = widths[b];
    if (block_values[b].sizes().vec() != expected) {
      fail("head block {} has shape {}, expected {}", b, shape_string(block_values[b].sizes()),
           shape_string(expected));
    }
  }
  // Joined first even in order: a block may be a view of `matrix` itself.
  const auto joined = torch::cat(block_values, axis).to(matrix.dtype());
  const auto index = head_rows_or_cols(layout, blocks);
  if (in_matrix_order(index)) {
    matrix.copy_(joined);
  } else {
    matrix.index_copy_(axis, head_index_tensor(index, matrix.device()), joined);
  }
}

GroupedProjections parse_grouped_projections(const std::vector<std::string>& names) {
  GroupedProjections projections;
  for (const auto& name : names) {
    if (name == "q") {
      projections.q = true;
    } else if (name == "k") {
      projections.k = true;
    } else if (name == "v") {
      projections.v = true;
    } else if (name == "o") {
      projections.o = true;
    } else if (name == "mla_up") {
      projections.mla_up = true;
    } else {
      fail("unknown grouped projection '{}': expected q, k, v, o or mla_up", name);
    }
  }
  return projections;
}

namespace {

// All segments grouped when `grouped`, else not grouped at all.
std::optional<std::vector<bool>> all_or_nothing(bool grouped, size_t segments) {
  if (!grouped) return std::nullopt;
  return std::vector<bool>(segments, true);
}

}  // namespace

std::optional<std::vector<bool>> grouped_segments(const TaggedParam& param,
                                                  const GroupedProjections& projections) {
  if (!param.heads) return std::nullopt;
  const size_t segments = segment_head_counts(*param.heads).size();
  switch (param.role) {
    case ParamRole::kAttnQ: return all_or_nothing(projections.q, segments);
    case ParamRole::kAttnK: return all_or_nothing(projections.k, segments);
    case ParamRole::kAttnV: return all_or_nothing(projections.v, segments);
    case ParamRole::kAttnO: return all_or_nothing(projections.o, segments);
    case ParamRole::kMlaUp: return all_or_nothing(projections.mla_up, segments);
    case ParamRole::kAttnQKV:
      if (segments != 3) {
        fail("fused QKV parameter '{}' has {} head segments, expected 3 (Q, K, V)", param.name,
             segments);
      }
      // Without q, k or v the fused weight is one matrix: "full-QKV" Muon.
      if (!projections.q && !projections.k && !projections.v) return std::nullopt;
      return std::vector<bool>{projections.q, projections.k, projections.v};
    default: return std::nullopt;
  }
}

std::optional<HeadBlocks> plan_param_head_blocks(const TaggedParam& param, const GroupedProjections& projections,
                                                 int64_t group_size, GroupingRule rule,
                                                 std::optional<torch::Generator> generator) {
  if (group_size <= 0 || !param.heads) return std::nullopt;
  auto segments = grouped_segments(param, projections);
  if (!segments) return std::nullopt;
  const auto head_counts = segment_head_counts(*param.heads);
  for (size_t s = 0; s < segments->size(); ++s) {
    if (head_counts[s] <= group_size) (*segments)[s] = false;
  }
  // One ungrouped segment is the whole matrix. (A fused QKV weight keeps its
  // Q, K and V segments apart even when none is cut further: g = H is "the
  // whole projection", one block per projection.)
  if (segments->size() == 1 && !segments->front()) return std::nullopt;
  try {
    return plan_head_blocks(*param.heads, *segments, group_size, rule, std::move(generator));
  } catch (const Error& error) {
    fail("Group Muon on parameter '{}': {}", param.name, error.what());
  }
}

}  // namespace muonlab::optim
