#include "muonlab/analysis/statistics.h"

#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "muonlab/core/errors.h"

namespace muonlab::analysis {

Summary summarize(const std::vector<double>& values) {
  if (values.empty()) fail("summarize: no values");
  Summary s;
  s.n = static_cast<int64_t>(values.size());
  for (const double v : values) {
    if (!std::isfinite(v)) fail("summarize: value {} is not finite", v);
    s.mean += v;
  }
  s.mean /= static_cast<double>(s.n);
  if (s.n > 1) {
    double squares = 0;
    for (const double v : values) squares += (v - s.mean) * (v - s.mean);
    s.std = std::sqrt(squares / static_cast<double>(s.n - 1));
  }
  return s;
}

PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) {
    fail("paired t-test: the samples have {} and {} values; pairs need the same seeds", a.size(), b.size());
  }
  if (a.size() < 2) fail("paired t-test: {} pair(s); at least 2 are needed", a.size());
  std::vector<double> differences;
  for (size_t i = 0; i < a.size(); ++i) differences.push_back(a[i] - b[i]);
  const Summary d = summarize(differences);
  PairedTTest test;
  test.pairs = d.n;
  test.mean_difference = d.mean;
  test.degrees_of_freedom = static_cast<double>(d.n - 1);
  if (d.std == 0) {
    // No spread: the difference is exact, and either nothing or certain.
    test.t = d.mean == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), d.mean);
    test.p_two_sided = d.mean == 0 ? 1 : 0;
    return test;
  }
  test.t = d.mean / (d.std / std::sqrt(static_cast<double>(d.n)));
  const boost::math::students_t distribution(test.degrees_of_freedom);
  test.p_two_sided = 2 * boost::math::cdf(boost::math::complement(distribution, std::abs(test.t)));
  return test;
}

std::optional<double> x_to_reach(const std::vector<double>& x, const std::vector<double>& loss, double target) {
  if (x.size() != loss.size()) fail("x_to_reach: {} x values but {} losses", x.size(), loss.size());
  for (size_t i = 1; i < x.size(); ++i) {
    if (!(x[i] > x[i - 1])) fail("x_to_reach: x must increase, but x[{}] = {} follows {}", i, x[i], x[i - 1]);
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(loss[i] <= target)) continue;
    if (i == 0) return x[0];
    // Between (x[i-1], loss[i-1] > target) and (x[i], loss[i] <= target).
    const double fraction = (loss[i - 1] - target) / (loss[i - 1] - loss[i]);
    return x[i - 1] + fraction * (x[i] - x[i - 1]);
  }
  return std::nullopt;
}

Interval bootstrap_interval(int64_t n, const ResampleStatistic& statistic, double level, int64_t resamples,
                            uint64_t seed) {
  if (n < 1) fail("bootstrap_interval: no items to resample");
  if (!(level > 0 && level < 1)) fail("bootstrap_interval: level {} is not in (0, 1)", level);
  if (resamples < 1) fail("bootstrap_interval: resamples {} must be positive", resamples);
  std::mt19937_64 generator(seed);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  std::vector<double> values;
  values.reserve(static_cast<size_t>(resamples));
  std::vector<int64_t> indices(static_cast<size_t>(n));
  for (int64_t r = 0; r < resamples; ++r) {
    for (auto& index : indices) index = pick(generator);
    const double value = statistic(indices);
    if (std::isfinite(value)) values.push_back(value);
  }
  if (values.empty()) fail("bootstrap_interval: the statistic was not finite on any resample");
  std::sort(values.begin(), values.end());
  // Linear interpolation between order statistics (numpy's default quantile).
  auto quantile = [&](double q) {
    const double position = q * static_cast<double>(values.size() - 1);
    const auto below = static_cast<size_t>(std::floor(position));
    const size_t above = std::min(below + 1, values.size() - 1);
    return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
  };
  return {quantile((1 - level) / 2), quantile((1 + level) / 2)};
}

std::vector<double> holm_adjust(const std::vector<double>& p_values) {
  const size_t m = p_values.size();
  for (const double p : p_values) {
    if (!(p >= 0 && p <= 1)) fail("holm_adjust: p-value {} is not in [0, 1]", p);
  }
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  std::vector<double> adjusted(m);
  double running_max = 0;
  for (size_t rank = 0; rank < m; ++rank) {
    running_max = std::max(running_max, std::min(1.0, p_values[order[rank]] * static_cast<double>(m - rank)));
    adjusted[order[rank]] = running_max;
  }
  return adjusted;
}

}  // namespace muonlab::analysis
