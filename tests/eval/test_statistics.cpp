// AUROC, average precision, balanced accuracy, bootstrap indices, median/percentile and the
// Wilcoxon test against scikit-learn, numpy and scipy on the same inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "eval/metrics.hpp"
#include "eval/statistics.hpp"
#include "tests/eval/eval_test_support.hpp"

namespace gf::eval {
namespace {

using testing::read_json;
using testing::run_python;
using testing::suite_scratch_dir;
using testing::write_json;

struct ScoreCase {
  std::vector<double> scores;
  std::vector<uint8_t> labels;
};

// Scores rounded to `decimals` (ties when small), labels correlated with the scores.
ScoreCase score_case(std::mt19937& rng, int n, int decimals, double positive_rate) {
  std::normal_distribution<double> noise(0, 1);
  std::bernoulli_distribution label(positive_rate);
  ScoreCase c;
  const double scale = std::pow(10.0, decimals);
  for (int i = 0; i < n; ++i) {
    const uint8_t y = label(rng);
    c.labels.push_back(y);
    c.scores.push_back(std::round((0.8 * y + noise(rng)) * scale) / scale);
  }
  return c;
}

// One python run scores every case; each check below compares one function.
class StatisticsVsPython : public ::testing::Test {
 protected:
  void check_auroc();
  void check_average_precision();
  void check_balanced_accuracy();
  void check_bootstrap_indices();
  void check_quantiles();
  void check_wilcoxon();

  static void SetUpTestSuite() {
    std::mt19937 rng(7);
    nlohmann::json input;
    for (auto [n, decimals, rate] : std::vector<std::tuple<int, int, double>>{
             {50, 1, 0.3}, {200, 0, 0.5}, {300, 6, 0.1}, {40, 2, 0.5}, {1000, 1, 0.05}}) {
      auto c = score_case(rng, n, decimals, rate);
      cases_.push_back(c);
      input["auroc"].push_back({{"scores", c.scores}, {"labels", c.labels}});
    }
    std::uniform_int_distribution<int64_t> cls(0, 4);
    for (int k = 0; k < 3; ++k) {
      std::vector<int64_t> t, p;
      for (int i = 0; i < 120; ++i) {
        t.push_back(cls(rng));
        p.push_back(cls(rng) == 0 ? t.back() : cls(rng));
      }
      balanced_.push_back({t, p});
      input["balanced"].push_back({{"y_true", t}, {"y_pred", p}});
    }
    std::normal_distribution<double> noise(0, 1);
    for (int n : {100, 99, 7, 1}) {
      std::vector<double> v;
      for (int i = 0; i < n; ++i) v.push_back(0.8 + 0.05 * noise(rng));
      quantiles_.push_back(v);
      input["quantiles"].push_back(v);
    }
    // Wilcoxon: continuous n=100; ties and zeros n=100; exact n=30; zeros at n=30 and tied
    // magnitudes at n=20 (normal approximation); ties, and zeros, at n<=13 (permutation).
    auto paired = [&](int n, int decimals, double shift) {
      std::vector<double> x, y;
      const double scale = std::pow(10.0, decimals);
      for (int i = 0; i < n; ++i) {
        const double base = 0.85 + 0.03 * noise(rng);
        x.push_back(std::round((base + shift + 0.01 * noise(rng)) * scale) / scale);
        y.push_back(std::round(base * scale) / scale);
      }
      return std::make_pair(x, y);
    };
    for (auto [n, decimals, shift] : std::vector<std::tuple<int, int, double>>{
             {100, 12, 0.002}, {100, 2, 0.001}, {30, 12, 0.004}, {30, 2, 0.0}, {20, 3, 0.003}, {100, 12, 0.0},
             {11, 2, 0.004}, {13, 2, 0.0}, {9, 12, 0.003}}) {
      wilcoxon_.push_back(paired(n, decimals, shift));
      input["wilcoxon"].push_back({{"x", wilcoxon_.back().first}, {"y", wilcoxon_.back().second}});
    }
    for (int64_t n : sizes_) input["bootstrap"].push_back({{"n", n}, {"count", count_for(n)}, {"seed", 42}});
    const auto dir = suite_scratch_dir();
    write_json(dir / "cases.json", input);
    // No ASSERT here: a failed SetUpTestSuite only marks the tests skipped, which ctest passes.
    if (run_python("stats_reference.py", (dir / "cases.json").string() + " " + (dir / "reference.json").string()) != 0) {
      setup_error_ = "stats_reference.py failed";
      return;
    }
    try {
      reference_ = read_json(dir / "reference.json");
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  static inline std::vector<ScoreCase> cases_;
  static inline std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> balanced_;
  static inline std::vector<std::vector<double>> quantiles_;
  static inline std::vector<std::pair<std::vector<double>, std::vector<double>>> wilcoxon_;
  static inline std::vector<int64_t> sizes_ = {1, 2, 7, 103, 1000, 70001};
  // 100 resamples as published, fewer for the large size (its JSON would be huge).
  static int count_for(int64_t n) { return n > 10000 ? 3 : 100; }
  static inline nlohmann::json reference_;
  static inline std::string setup_error_;
};

void StatisticsVsPython::check_auroc() {
  for (size_t i = 0; i < cases_.size(); ++i)
    EXPECT_NEAR(auroc(cases_[i].scores, cases_[i].labels), reference_["auroc"][i].get<double>(), 1e-12) << "case " << i;
}

void StatisticsVsPython::check_average_precision() {
  for (size_t i = 0; i < cases_.size(); ++i)
    EXPECT_NEAR(average_precision(cases_[i].scores, cases_[i].labels),
                reference_["average_precision"][i].get<double>(), 1e-12)
        << "case " << i;
}

void StatisticsVsPython::check_balanced_accuracy() {
  for (size_t i = 0; i < balanced_.size(); ++i)
    EXPECT_NEAR(balanced_accuracy(balanced_[i].first, balanced_[i].second),
                reference_["balanced_accuracy"][i].get<double>(), 1e-12);
}

void StatisticsVsPython::check_bootstrap_indices() {
  for (int64_t n : sizes_) {
    const auto mine = bootstrap_indices(n, count_for(n), 42);
    const auto& theirs = reference_["bootstrap"][std::to_string(n)];
    ASSERT_EQ(mine.size(), theirs.size());
    for (size_t r = 0; r < mine.size(); ++r) ASSERT_EQ(mine[r], theirs[r].get<std::vector<int64_t>>()) << "n " << n << " resample " << r;
  }
}

void StatisticsVsPython::check_quantiles() {
  for (size_t i = 0; i < quantiles_.size(); ++i) {
    EXPECT_DOUBLE_EQ(median(quantiles_[i]), reference_["median"][i].get<double>());
    EXPECT_DOUBLE_EQ(percentile(quantiles_[i], 2.5), reference_["percentile_low"][i].get<double>());
    EXPECT_DOUBLE_EQ(percentile(quantiles_[i], 97.5), reference_["percentile_high"][i].get<double>());
  }
}

void StatisticsVsPython::check_wilcoxon() {
  size_t exact = 0;
  for (size_t i = 0; i < wilcoxon_.size(); ++i) {
    const auto result = wilcoxon_signed_rank(wilcoxon_[i].first, wilcoxon_[i].second);
    exact += result.exact;
    EXPECT_DOUBLE_EQ(result.statistic, reference_["wilcoxon"][i]["statistic"].get<double>()) << "case " << i;
    EXPECT_NEAR(result.p_value, reference_["wilcoxon"][i]["p_value"].get<double>(),
                1e-12 + 1e-9 * reference_["wilcoxon"][i]["p_value"].get<double>())
        << "case " << i;
  }
  // Both of scipy's methods are exercised.
  EXPECT_GE(exact, 1u);
  EXPECT_GE(wilcoxon_.size() - exact, 3u);
}

TEST_F(StatisticsVsPython, MatchesSklearnNumpyAndScipy) {
  ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  {
    SCOPED_TRACE("AUROC with ties vs roc_auc_score");
    check_auroc();
  }
  {
    SCOPED_TRACE("average precision vs average_precision_score");
    check_average_precision();
  }
  {
    SCOPED_TRACE("balanced accuracy vs balanced_accuracy_score");
    check_balanced_accuracy();
  }
  {
    SCOPED_TRACE("bootstrap indices vs RandomState(42).choice");
    check_bootstrap_indices();
  }
  {
    SCOPED_TRACE("median / percentile vs numpy");
    check_quantiles();
  }
  {
    SCOPED_TRACE("Wilcoxon vs scipy.stats.wilcoxon");
    check_wilcoxon();
  }
}

TEST(Statistics, EdgeCases) {
  EXPECT_TRUE(std::isnan(auroc({0.1, 0.2}, {1, 1})));
  EXPECT_TRUE(std::isnan(average_precision({0.1, 0.2}, {0, 0})));
  EXPECT_DOUBLE_EQ(auroc({0.5, 0.5, 0.5, 0.5}, {1, 0, 1, 0}), 0.5);
  EXPECT_DOUBLE_EQ(auroc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  // Every difference zero: scipy raises; we report no p-value.
  EXPECT_TRUE(std::isnan(wilcoxon_signed_rank({1, 2, 3}, {1, 2, 3}).p_value));
  // NaN pairs (resamples with one class) are dropped before the test.
  const auto with_nan = wilcoxon_signed_rank({NAN, 0.9, 0.8}, {0.1, NAN, 0.7});
  EXPECT_EQ(with_nan.n_used, 1);
  EXPECT_TRUE(std::isnan(median({NAN, NAN})));
  EXPECT_THROW(wilcoxon_signed_rank({1, 2}, {1}), std::runtime_error);
}

}  // namespace
}  // namespace gf::eval
