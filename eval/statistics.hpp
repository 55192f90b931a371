#pragma once
// Paired bootstrap and the Wilcoxon signed-rank test of the published evaluation.
#include <cstdint>
#include <vector>

namespace gf::eval {

// `count` resamples of {0..n-1} with replacement, drawn exactly as the published code does:
// numpy's RandomState(seed).choice(n, size=n, replace=True) per resample from one generator
// (MT19937 words masked to the next power of two, rejection above n-1). Generated once per
// task, every model is scored on the same index sets (paired samples).
std::vector<std::vector<int64_t>> bootstrap_indices(int64_t n, int count, uint32_t seed);

// numpy's median and percentile (linear interpolation, q in [0, 100]) of the finite values
// (NaN entries are ignored; NaN when none is finite).
double median(std::vector<double> values);
double percentile(std::vector<double> values, double q);

struct WilcoxonResult {
  double statistic = 0;  // min(R+, R-)
  double p_value = 0;    // NaN when every difference is zero (scipy raises there)
  int64_t n_used = 0;    // differences left after dropping zeros
  bool exact = false;    // p from an exact null distribution (no normal approximation)
};

// scipy.stats.wilcoxon(x, y) with its defaults (scipy >= 1.13, as pinned): two-sided,
// zero_method "wilcox" (zero differences dropped), no continuity correction, method "auto":
// len <= 50 without ties or zeros: the exact signed-rank distribution; ties or zeros with
// len <= 13: the exact permutation distribution of R+ over every sign pattern; otherwise the
// normal approximation with the tie correction of the variance. With the published 100
// bootstrap resamples every version of scipy takes the normal approximation.
WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace gf::eval
