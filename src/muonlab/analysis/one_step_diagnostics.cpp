#include "muonlab/analysis/one_step_diagnostics.h"

#include <map>
#include <utility>

#include "muonlab/analysis/polar_factor.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::analysis {
namespace {

void check_is_matrix(const torch::Tensor& M, const std::string& what) {
  if (!M.defined() || M.dim() != 2) {
    fail("one_step_diagnostics: {} must be 2-D, got shape {}", what,
         M.defined() ? shape_string(M.sizes()) : std::string("(undefined)"));
  }
  if (M.numel() == 0) {
    fail("one_step_diagnostics: {} of shape {} is empty", what, shape_string(M.sizes()));
  }
}

// The blocks must partition whole's entries. Only the element count can be
// checked without knowing how they were cut; it catches a missing or doubled
// block, the likely mistakes.
void check_partition(const torch::Tensor& whole, const std::vector<torch::Tensor>& blocks) {
  check_is_matrix(whole, "the whole matrix");
  if (blocks.empty()) fail("one_step_diagnostics: no blocks given for a {} matrix",
                           shape_string(whole.sizes()));
  int64_t total = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    check_is_matrix(blocks[i], fmt::format("block {}", i));
    if (blocks[i].device() != whole.device()) {
      fail("one_step_diagnostics: block {} is on {} but the whole matrix on {}", i,
           blocks[i].device().str(), whole.device().str());
    }
    total += blocks[i].numel();
  }
  if (total != whole.numel()) {
    fail("one_step_diagnostics: the {} blocks hold {} entries but the whole {} matrix has {}; "
         "blocks must partition its entries",
         blocks.size(), total, shape_string(whole.sizes()), whole.numel());
  }
}

// r x c and c x r share a batch once both are wide; orthogonalization
// commutes with transposition and so do the inner product and the norm.
torch::Tensor oriented_wide(const torch::Tensor& M) {
  return M.size(0) > M.size(1) ? M.t() : M;
}

// Blocks in float64, oriented wide, grouped by shape: one batched call each.
std::map<std::pair<int64_t, int64_t>, std::vector<torch::Tensor>> blocks_by_shape(
    const std::vector<torch::Tensor>& blocks) {
  std::map<std::pair<int64_t, int64_t>, std::vector<torch::Tensor>> groups;
  for (const auto& block : blocks) {
    const auto wide = oriented_wide(block.to(torch::kFloat64));
    groups[{wide.size(0), wide.size(1)}].push_back(wide);
  }
  return groups;
}

// O for a batch, checked to keep its shape (a custom orthogonalizer may not).
torch::Tensor orthogonalized(const torch::Tensor& batch, const Orthogonalizer& orthogonalize) {
  auto O = orthogonalize(batch);
  if (!O.defined() || O.sizes() != batch.sizes()) {
    fail("one_step_diagnostics: the orthogonalizer turned a batch of shape {} into {}",
         shape_string(batch.sizes()),
         O.defined() ? shape_string(O.sizes()) : std::string("(undefined)"));
  }
  return O.to(torch::kFloat64);
}

// {sum_n <G_n, O_n>, sum_n ||O_n||_F^2} over a batch, as a float64 tensor [2],
// left on the device so that the caller syncs once.
torch::Tensor inner_product_and_squared_norm(const torch::Tensor& G, const torch::Tensor& O) {
  return torch::stack({(G * O).sum(), O.square().sum()});
}

}  // namespace

OneStepTerms one_step_terms(const torch::Tensor& whole, const std::vector<torch::Tensor>& blocks,
                            const Orthogonalizer& orthogonalize) {
  check_partition(whole, blocks);
  const auto G = oriented_wide(whole.to(torch::kFloat64)).unsqueeze(0);
  const auto whole_sums = inner_product_and_squared_norm(G, orthogonalized(G, orthogonalize));

  // <G, O_grp> = sum_i <G_i, O_i> and ||O_grp||_F^2 = sum_i ||O_i||_F^2
  // because the blocks partition the entries: O_grp is never assembled.
  auto block_sums = torch::zeros({2}, G.options());
  for (const auto& [shape, members] : blocks_by_shape(blocks)) {
    const auto batch = torch::stack(members);
    block_sums += inner_product_and_squared_norm(batch, orthogonalized(batch, orthogonalize));
  }
  const auto difference = (block_sums - whole_sums).cpu();
  const auto* d = difference.data_ptr<double>();
  return {d[0], d[1]};
}

OneStepDiagnostics one_step_diagnostics(const torch::Tensor& whole,
                                        const std::vector<torch::Tensor>& blocks,
                                        const optim::NewtonSchulzConfig& config) {
  config.validate();
  OneStepDiagnostics result;
  result.newton_schulz = one_step_terms(
      whole, blocks, [&](const torch::Tensor& batch) { return optim::newton_schulz(batch, config); });
  result.exact = one_step_terms(whole, blocks,
                                [](const torch::Tensor& batch) { return polar_factor(batch); });
  return result;
}

std::optional<OneStepDiagnostics> grouped_one_step_diagnostics(
    const optim::TaggedParam& param, const torch::Tensor& G, const optim::GroupedProjections& projections,
    int64_t group_size, optim::GroupingRule rule, std::optional<torch::Generator> generator,
    const optim::NewtonSchulzConfig& config) {
  const auto blocks = optim::plan_param_head_blocks(param, projections, group_size, rule, std::move(generator));
  if (!blocks) return std::nullopt;
  return one_step_diagnostics(G, optim::gather_head_blocks(G, *param.heads, *blocks), config);
}

double descent_difference(const OneStepTerms& terms, double eta, double beta) {
  return eta * terms.gain - 0.5 * beta * eta * eta * terms.cost;
}

}  // namespace muonlab::analysis
