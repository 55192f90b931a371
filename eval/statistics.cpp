#include "eval/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

namespace gf::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> finite_sorted(std::vector<double> values) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }),
               values.end());
  std::sort(values.begin(), values.end());
  return values;
}

// Average ranks (1-based) of |d|, as scipy.stats.rankdata; also the sizes of the tie groups.
std::vector<double> average_ranks(const std::vector<double>& a, std::vector<int64_t>& tie_sizes) {
  const size_t n = a.size();
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return a[x] < a[y]; });
  std::vector<double> ranks(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && a[order[j]] == a[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    if (j - i > 1) tie_sizes.push_back(static_cast<int64_t>(j - i));
    i = j;
  }
  return ranks;
}

// Probability of each positive rank sum 0..n(n+1)/2 under the null (all 2^n sign patterns).
std::vector<double> wilcoxon_null_pmf(int64_t n) {
  const int64_t max_sum = n * (n + 1) / 2;
  std::vector<double> counts(static_cast<size_t>(max_sum + 1), 0.0);
  counts[0] = 1;
  for (int64_t k = 1; k <= n; ++k)
    for (int64_t s = k * (k + 1) / 2; s >= k; --s) counts[s] += counts[s - k];
  const double total = std::ldexp(1.0, static_cast<int>(n));
  for (double& c : counts) c /= total;
  return counts;
}

}  // namespace

std::vector<std::vector<int64_t>> bootstrap_indices(int64_t n, int count, uint32_t seed) {
  if (n <= 0 || n > std::numeric_limits<uint32_t>::max())
    throw std::runtime_error("bootstrap: test set size " + std::to_string(n) + ", expected 1 to 2^32-1 rows");
  // numpy's legacy RandomState: init_genrand(seed) (= std::mt19937's seeding), and
  // randint(0, n) by masked rejection on 32-bit words.
  std::mt19937 generator(seed);
  const uint32_t range = static_cast<uint32_t>(n - 1);
  uint32_t mask = range;
  for (int shift = 1; shift < 32; shift <<= 1) mask |= mask >> shift;
  std::vector<std::vector<int64_t>> indices(static_cast<size_t>(count), std::vector<int64_t>(n));
  for (auto& resample : indices)
    for (auto& index : resample) {
      if (range == 0) {
        index = 0;  // numpy draws nothing for a one-element range
        continue;
      }
      uint32_t value;
      do value = static_cast<uint32_t>(generator()) & mask;
      while (value > range);
      index = value;
    }
  return indices;
}

double percentile(std::vector<double> values, double q) {
  values = finite_sorted(std::move(values));
  if (values.empty()) return kNaN;
  // numpy's virtual index for the linear method, in numpy's order of operations (bit-exact).
  const double fraction_q = q / 100.0;
  const double position = static_cast<double>(values.size()) * fraction_q + (1 - fraction_q) - 1;
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  // numpy's _lerp: a + (b - a) * t, taken from the upper end when t >= 0.5.
  const double a = values[below], b = values[above];
  return fraction >= 0.5 ? b - (b - a) * (1 - fraction) : a + (b - a) * fraction;
}

double median(std::vector<double> values) {
  values = finite_sorted(std::move(values));
  if (values.empty()) return kNaN;
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

WilcoxonResult wilcoxon_signed_rank(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size())
    throw std::runtime_error("wilcoxon: found samples of " + std::to_string(x.size()) + " and " +
                             std::to_string(y.size()) + " values, expected paired samples of equal length");
  std::vector<double> d;
  for (size_t i = 0; i < x.size(); ++i)
    if (!std::isnan(x[i]) && !std::isnan(y[i])) d.push_back(x[i] - y[i]);
  WilcoxonResult result;
  result.p_value = kNaN;
  if (d.empty()) return result;
  const size_t len = d.size();
  const bool has_zero = std::any_of(d.begin(), d.end(), [](double v) { return v == 0; });
  d.erase(std::remove(d.begin(), d.end(), 0.0), d.end());
  result.n_used = static_cast<int64_t>(d.size());
  if (d.empty()) return result;

  std::vector<double> magnitude(d.size());
  for (size_t i = 0; i < d.size(); ++i) magnitude[i] = std::fabs(d[i]);
  std::vector<int64_t> tie_sizes;
  const std::vector<double> ranks = average_ranks(magnitude, tie_sizes);
  double r_plus = 0, r_minus = 0;
  for (size_t i = 0; i < d.size(); ++i) (d[i] > 0 ? r_plus : r_minus) += ranks[i];
  result.statistic = std::min(r_plus, r_minus);
  const double n = static_cast<double>(d.size());
  const bool ties = !tie_sizes.empty();

  if (len <= 50 && !ties && !has_zero) {
    result.exact = true;
    const std::vector<double> pmf = wilcoxon_null_pmf(result.n_used);
    const auto observed = static_cast<int64_t>(r_plus);  // integral without ties
    double p_less = 0, p_greater = 0;
    for (int64_t s = 0; s < static_cast<int64_t>(pmf.size()); ++s) {
      if (s <= observed) p_less += pmf[s];
      if (s >= observed) p_greater += pmf[s];
    }
    result.p_value = std::clamp(2 * std::min(p_less, p_greater), 0.0, 1.0);
    return result;
  }
  if (len <= 13) {
    // scipy's permutation_test: every one of the 2^n sign patterns (n <= 13 < its 9999 resamples).
    result.exact = true;
    const uint32_t patterns = 1u << d.size();
    const double tolerance = 1e-14 * std::max(1.0, std::fabs(r_plus));
    uint32_t less = 0, greater = 0;
    for (uint32_t signs = 0; signs < patterns; ++signs) {
      double sum = 0;
      for (size_t i = 0; i < d.size(); ++i)
        if (signs >> i & 1u) sum += ranks[i];
      less += sum <= r_plus + tolerance;
      greater += sum >= r_plus - tolerance;
    }
    result.p_value = std::min(1.0, 2.0 * std::min(less, greater) / patterns);
    return result;
  }
  const double mean = n * (n + 1) * 0.25;
  double variance = n * (n + 1) * (2 * n + 1);
  for (int64_t t : tie_sizes) variance -= 0.5 * static_cast<double>(t * (t * t - 1));
  const double se = std::sqrt(variance / 24);
  const double z = (result.statistic - mean) / se;
  result.p_value = std::erfc(std::fabs(z) / std::sqrt(2.0));  // 2 * norm.sf(|z|)
  return result;
}

}  // namespace gf::eval
