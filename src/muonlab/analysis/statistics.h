// The statistics the papers' referees asked for: means with sample standard
// deviations over seeds, paired t-tests between two variants run on the same
// seeds, bootstrap confidence intervals over seeds, Holm's correction for a
// study's several comparisons, and the tokens (or steps) a loss curve needs
// to reach a target.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace muonlab::analysis {

struct Summary {
  int64_t n = 0;
  double mean = 0;
  double std = 0;  // sample standard deviation (n - 1); 0 for n = 1
};
// Fails on an empty sample or a non-finite value.
Summary summarize(const std::vector<double>& values);

// Paired two-sided t-test of a - b (the same seeds, in the same order):
// t = mean(d) / (std(d) / sqrt(n)), n - 1 degrees of freedom, p from
// Student's t distribution (Boost.Math). Fails with fewer than two pairs or
// samples of different sizes. All differences equal: t is +-infinity and
// p = 0 (or t = 0 and p = 1 when they are all zero).
struct PairedTTest {
  int64_t pairs = 0;
  double mean_difference = 0;  // mean of a - b
  double t = 0;
  double degrees_of_freedom = 0;
  double p_two_sided = 1;
};
PairedTTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b);

// A percentile bootstrap confidence interval: `statistic` of `resamples`
// resamples, each `n` indices into the items (seeds) drawn with
// replacement, and the (1 - level) / 2 and (1 + level) / 2 quantiles of
// those values. Paired quantities resample pairs: the statistic reads both
// sides at the same indices. A resample whose statistic is not finite (a
// ratio with a zero) is left out; fails when none is finite, or n < 1.
// Deterministic for a given seed.
struct Interval {
  double low = 0;
  double high = 0;
};
using ResampleStatistic = std::function<double(const std::vector<int64_t>& indices)>;
Interval bootstrap_interval(int64_t n, const ResampleStatistic& statistic, double level = 0.95,
                            int64_t resamples = 10000, uint64_t seed = 0);

// Holm-Bonferroni adjusted p-values, in the input's order: sort ascending,
// p_(i) x (m - i) for the 0-based rank i, made non-decreasing in rank,
// capped at 1. A comparison is significant at level alpha across the whole
// family when its adjusted p < alpha.
std::vector<double> holm_adjust(const std::vector<double>& p_values);

// The x (tokens or steps) at which a loss curve first reaches `target`:
// linear interpolation between the last point above the target and the
// first at or below it; nullopt when it never gets there. `x` must be
// increasing and the same length as `loss`.
std::optional<double> x_to_reach(const std::vector<double>& x, const std::vector<double>& loss, double target);

}  // namespace muonlab::analysis
