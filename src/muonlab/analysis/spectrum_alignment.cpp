#include "muonlab/analysis/spectrum_alignment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "muonlab/analysis/alignment.h"
#include "muonlab/analysis/polar_factor.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The q-quantile of ascending values, interpolating linearly between the two
// nearest (numpy's default).
double quantile_of_sorted(const std::vector<double>& ascending, double q) {
  const double position = q * static_cast<double>(ascending.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, ascending.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return ascending[below] + fraction * (ascending[above] - ascending[below]);
}

std::vector<double> nonzero_ascending(const torch::Tensor& S, int64_t rows, int64_t cols) {
  const auto kept = S.masked_select(nonzero_singular_values(S, rows, cols)).contiguous();
  std::vector<double> values(kept.data_ptr<double>(), kept.data_ptr<double>() + kept.numel());
  std::sort(values.begin(), values.end());
  return values;
}

void check_matrix(const torch::Tensor& M, const char* what) {
  if (M.dim() != 2) fail("{} must be a matrix, got shape {}", what, shape_string(M.sizes()));
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) text += (i == 0 ? "" : "x") + std::to_string(shape[i]);
  return text;
}

// Curve k, or the last one where the curve is shorter (K below the asked step).
double at_step(const std::vector<double>& curve, int64_t k) {
  if (curve.empty()) return kNaN;
  return curve[static_cast<size_t>(std::clamp<int64_t>(k, 0, static_cast<int64_t>(curve.size()) - 1))];
}

int64_t curve_steps(const std::vector<AlignmentRow>& rows) {
  return rows.empty() ? 0 : static_cast<int64_t>(rows.front().muon.size()) - 1;
}

// The table's alignment columns: which method after which step.
struct AlignmentColumn {
  AlignmentMethod method;
  int64_t step;
  std::string title() const { return fmt::format("{} k={}", to_string(method), step); }
};

std::vector<AlignmentColumn> alignment_columns(const std::vector<AlignmentRow>& rows,
                                               const AlignmentTableOptions& options) {
  const int64_t K = curve_steps(rows);
  const int64_t short_k = std::min(options.muon2_steps, K);
  const int64_t long_k = std::min(options.muon_steps, K);
  std::vector<AlignmentColumn> columns{{AlignmentMethod::kMuon, short_k}, {AlignmentMethod::kMuon2, short_k}};
  if (long_k != short_k) columns.push_back({AlignmentMethod::kMuon, long_k});
  return columns;
}

std::string table_line(const std::string& name, size_t name_width, const std::string& shape, const std::string& rank,
                       const std::string& spectra, const std::vector<std::string>& alignments) {
  std::string line = fmt::format("{:<{}}  {:>9}  {:>5}  {}", name, name_width, shape, rank, spectra);
  for (const std::string& value : alignments) line += fmt::format("  {:>9}", value);
  return line + "\n";
}

std::string spectra_cells(const SpectrumStats& before, const SpectrumStats& after) {
  return fmt::format("{:>9.3g}  {:>9.3g}  {:>11.3g}  {:>11.3g}", before.condition, after.condition,
                     before.spread_p90_p10, after.spread_p90_p10);
}

}  // namespace

SpectrumStats spectrum_stats(const torch::Tensor& M) {
  check_matrix(M, "spectrum_stats' input");
  SpectrumStats stats;
  const std::vector<double> s = nonzero_ascending(singular_values(M).cpu(), M.size(0), M.size(1));
  stats.rank = static_cast<int64_t>(s.size());
  if (s.empty() || s.back() == 0) {  // the zero matrix: no direction to speak of
    stats.condition = stats.spread_p90_p10 = kNaN;
    stats.rank = 0;
    return stats;
  }
  stats.s_max = s.back();
  stats.s_min = s.front();
  stats.condition = stats.s_max / stats.s_min;
  stats.spread_p90_p10 = quantile_of_sorted(s, 0.9) / quantile_of_sorted(s, 0.1);
  return stats;
}

AlignmentRow spectrum_alignment(const std::string& name, const torch::Tensor& muon_input,
                                const torch::Tensor& muon2_input, const optim::NewtonSchulzConfig& config) {
  check_matrix(muon_input, "the Muon input");
  check_matrix(muon2_input, "the Muon² input");
  if (muon_input.sizes() != muon2_input.sizes()) {
    fail("'{}': the Muon input has shape {} but the Muon² input {}", name, shape_string(muon_input.sizes()),
         shape_string(muon2_input.sizes()));
  }
  AlignmentRow row;
  row.name = name;
  row.shape = muon_input.sizes().vec();
  row.before = spectrum_stats(muon_input);
  row.after = spectrum_stats(muon2_input);
  row.muon = ns_alignment_curve(muon_input, config);
  row.muon2 = ns_alignment_curve(muon2_input, config);
  return row;
}

std::string to_string(AlignmentMethod method) { return method == AlignmentMethod::kMuon ? "muon" : "muon2"; }

const std::vector<double>& curve_of(const AlignmentRow& row, AlignmentMethod method) {
  return method == AlignmentMethod::kMuon ? row.muon : row.muon2;
}

std::vector<double> mean_curve(const std::vector<AlignmentRow>& rows, AlignmentMethod method) {
  if (rows.empty()) return {};
  std::vector<double> mean(curve_of(rows.front(), method).size(), 0.0);
  for (const AlignmentRow& row : rows) {
    const std::vector<double>& curve = curve_of(row, method);
    if (curve.size() != mean.size()) {
      fail("'{}' has {} alignment steps, '{}' {}: one NS config per table", row.name, curve.size() - 1,
           rows.front().name, mean.size() - 1);
    }
    for (size_t k = 0; k < curve.size(); ++k) mean[k] += curve[k] / static_cast<double>(rows.size());
  }
  return mean;
}

std::string format_alignment_table(const std::vector<AlignmentRow>& rows, const AlignmentTableOptions& options) {
  if (rows.empty()) fail("no matrices to tabulate");
  const std::string mean_name = fmt::format("mean of {}", rows.size());
  size_t name_width = std::max<size_t>(mean_name.size(), 9);
  for (const AlignmentRow& row : rows) name_width = std::max(name_width, row.name.size());

  const std::vector<AlignmentColumn> columns = alignment_columns(rows, options);
  std::vector<std::string> titles;
  for (const AlignmentColumn& column : columns) titles.push_back(column.title());
  std::string table = table_line("parameter", name_width, "shape", "rank",
                                 fmt::format("{:>9}  {:>9}  {:>11}  {:>11}", "cond U", "cond P", "p90/p10 U",
                                             "p90/p10 P"),
                                 titles);
  for (const AlignmentRow& row : rows) {
    std::vector<std::string> values;
    for (const AlignmentColumn& column : columns) {
      values.push_back(fmt::format("{:.4f}", at_step(curve_of(row, column.method), column.step)));
    }
    table += table_line(row.name, name_width, shape_text(row.shape), std::to_string(row.before.rank),
                        spectra_cells(row.before, row.after), values);
  }
  std::vector<std::string> means;
  for (const AlignmentColumn& column : columns) {
    means.push_back(fmt::format("{:.4f}", at_step(mean_curve(rows, column.method), column.step)));
  }
  table += table_line(mean_name, name_width, "", "", fmt::format("{:>9}  {:>9}  {:>11}  {:>11}", "", "", "", ""),
                      means);
  return table;
}

std::string alignment_csv(const std::vector<AlignmentRow>& rows) {
  std::string csv = "parameter,rows,cols,method,rank,condition,spread_p90_p10,s_max,s_min,k,alignment\n";
  for (const AlignmentRow& row : rows) {
    for (AlignmentMethod method : {AlignmentMethod::kMuon, AlignmentMethod::kMuon2}) {
      const SpectrumStats& stats = method == AlignmentMethod::kMuon ? row.before : row.after;
      const std::vector<double>& curve = curve_of(row, method);
      for (size_t k = 0; k < curve.size(); ++k) {
        // Parameter names hold no commas or quotes (module paths), so no quoting.
        csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n", row.name, row.shape.at(0), row.shape.at(1),
                           to_string(method), stats.rank, stats.condition, stats.spread_p90_p10, stats.s_max,
                           stats.s_min, k, curve[k]);
      }
    }
  }
  return csv;
}

}  // namespace muonlab::analysis
