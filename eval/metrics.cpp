#include "eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

namespace gf::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Mann-Whitney U of the positives over the negatives from average ranks, normalised to [0,1].
double mann_whitney_auc(std::vector<std::pair<double, uint8_t>>& pairs) {
  std::sort(pairs.begin(), pairs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0;
  int64_t positives = 0;
  const int64_t n = static_cast<int64_t>(pairs.size());
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    int64_t tied_positives = 0;
    while (j < n && pairs[j].first == pairs[i].first) tied_positives += pairs[j++].second;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1..j
    rank_sum += average_rank * static_cast<double>(tied_positives);
    positives += tied_positives;
    i = j;
  }
  const int64_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  const double p = static_cast<double>(positives);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

void check_sizes(size_t scores, size_t labels, const char* what) {
  if (scores != labels)
    throw std::runtime_error(std::string(what) + ": found " + std::to_string(scores) + " scores and " +
                             std::to_string(labels) + " labels, expected equal counts");
}

}  // namespace

double auroc(const std::vector<double>& scores, const std::vector<uint8_t>& positive) {
  check_sizes(scores.size(), positive.size(), "auroc");
  std::vector<std::pair<double, uint8_t>> pairs(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) pairs[i] = {scores[i], positive[i] ? 1 : 0};
  return mann_whitney_auc(pairs);
}

double auroc(const std::vector<double>& scores, const std::vector<uint8_t>& positive,
             const std::vector<int64_t>& index) {
  check_sizes(scores.size(), positive.size(), "auroc");
  std::vector<std::pair<double, uint8_t>> pairs(index.size());
  for (size_t i = 0; i < index.size(); ++i) pairs[i] = {scores.at(index[i]), positive.at(index[i]) ? 1 : 0};
  return mann_whitney_auc(pairs);
}

double average_precision(const std::vector<double>& scores, const std::vector<uint8_t>& positive) {
  check_sizes(scores.size(), positive.size(), "average_precision");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const double total_positives = static_cast<double>(std::count_if(
      positive.begin(), positive.end(), [](uint8_t v) { return v != 0; }));
  if (total_positives == 0) return kNaN;
  // One operating point per distinct score, from the highest threshold down.
  double tp = 0, fp = 0, previous_recall = 0, ap = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) {
      (positive[order[j]] ? tp : fp) += 1;
      ++j;
    }
    const double recall = tp / total_positives;
    ap += (recall - previous_recall) * (tp / (tp + fp));
    previous_recall = recall;
    i = j;
  }
  return ap;
}

double balanced_accuracy(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred) {
  check_sizes(y_pred.size(), y_true.size(), "balanced_accuracy");
  std::map<int64_t, std::pair<int64_t, int64_t>> per_class;  // class -> (correct, total)
  for (size_t i = 0; i < y_true.size(); ++i) {
    auto& counts = per_class[y_true[i]];
    counts.first += y_pred[i] == y_true[i];
    counts.second += 1;
  }
  if (per_class.empty()) return kNaN;
  double sum = 0;
  for (const auto& [cls, counts] : per_class) sum += static_cast<double>(counts.first) / counts.second;
  return sum / static_cast<double>(per_class.size());
}

}  // namespace gf::eval
