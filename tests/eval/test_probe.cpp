// greenfound's probe against scikit-learn's make_pipeline(StandardScaler(),
// LogisticRegression(max_iter=20000)) on the same embeddings files and bootstrap indices,
// and the bad inputs that must become per-task errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "eval/logistic_probe.hpp"
#include "eval/probe.hpp"
#include "eval/statistics.hpp"
#include "eval/tasks.hpp"
#include "tests/eval/eval_test_support.hpp"
#include "tests/eval/probe_fixture.hpp"

namespace gf::eval {
namespace {

using testing::read_json;
using testing::run_python;
using testing::suite_scratch_dir;
using testing::synthetic_table;
using testing::SyntheticOptions;
using testing::write_json;

const char* kTasks = R"({"tasks": [
  {"name": "amd", "label": "amd"},
  {"name": "dr_grade", "label": "grade", "kind": "multiclass"},
  {"name": "referable", "label": "grade > 1"},
  {"name": "any_dr_diabetic", "label": "grade > 0", "filter": {"column": "diabetes", "equals": 1}},
  {"name": "transfer", "label": "grade > 1", "train": {"split": "all"}, "test": {"source": "other", "split": "test"}},
  {"name": "any_dr_site_A_to_B", "label": "grade > 0",
   "train": {"split": "all", "filter": {"column": "site", "equals": "A"}},
   "test": {"split": "all", "filter": {"column": "site", "equals": "B"}}},
  {"name": "referable_diabetic_BC_to_A", "label": "grade > 1", "filter": {"column": "diabetes", "equals": 1},
   "train": {"filter": [{"column": "site", "not_equals": "A"}]},
   "test": {"split": "all", "filter": {"column": "site", "equals": 0}}}
]})";

// The same tasks for sklearn_reference.py, spelled out (category names stay names: python
// looks them up in the file's categories).
nlohmann::json python_tasks() {
  auto side = [](const std::string& source, const std::string& split,
                 const nlohmann::json& filters = nlohmann::json::array()) {
    return nlohmann::json{{"source", source}, {"split", split}, {"filters", filters}};
  };
  const nlohmann::json none = nullptr;
  return nlohmann::json::array({
      {{"name", "amd"}, {"column", "amd"}, {"threshold", none}, {"binary", true}, {"filters", nlohmann::json::array()},
       {"train", side("", "train")}, {"test", side("", "test")}},
      {{"name", "dr_grade"}, {"column", "grade"}, {"threshold", none}, {"binary", false},
       {"filters", nlohmann::json::array()}, {"train", side("", "train")}, {"test", side("", "test")}},
      {{"name", "referable"}, {"column", "grade"}, {"threshold", {">", 1}}, {"binary", true},
       {"filters", nlohmann::json::array()}, {"train", side("", "train")}, {"test", side("", "test")}},
      {{"name", "any_dr_diabetic"}, {"column", "grade"}, {"threshold", {">", 0}}, {"binary", true},
       {"filters", {{"diabetes", "==", 1}}}, {"train", side("", "train")}, {"test", side("", "test")}},
      {{"name", "transfer"}, {"column", "grade"}, {"threshold", {">", 1}}, {"binary", true},
       {"filters", nlohmann::json::array()}, {"train", side("", "all")}, {"test", side("other", "test")}},
      {{"name", "any_dr_site_A_to_B"}, {"column", "grade"}, {"threshold", {">", 0}}, {"binary", true},
       {"filters", nlohmann::json::array()}, {"train", side("", "all", {{"site", "==", "A"}})},
       {"test", side("", "all", {{"site", "==", "B"}})}},
      {{"name", "referable_diabetic_BC_to_A"}, {"column", "grade"}, {"threshold", {">", 1}}, {"binary", true},
       {"filters", {{"diabetes", "==", 1}}}, {"train", side("", "train", {{"site", "!=", "A"}})},
       {"test", side("", "all", {{"site", "==", 0}})}},
  });
}

// Model a's and b's dataset: with a site column for the site-transfer tasks.
SyntheticOptions with_sites() {
  SyntheticOptions options;
  options.site = true;
  return options;
}

class ProbeVsSklearn : public ::testing::Test {
 protected:
  // No ASSERT or escaping exception here: a failed SetUpTestSuite only marks the tests
  // skipped, which ctest counts as passed. Each test checks setup_error_ instead.
  static void SetUpTestSuite() {
    try {
      run_greenfound();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static void run_greenfound() {
    dir_ = suite_scratch_dir();
    // Model a: cleaner embeddings; model b: noisier, with a constant feature.
    SyntheticOptions a = with_sites(), b = with_sites(), a_other, b_other;
    b.model_seed = 20;
    b.noise = 1.8;
    b.constant_feature = true;
    a_other = a;
    b_other = b;
    a_other.dataset_seed = b_other.dataset_seed = 2;
    a_other.rows = b_other.rows = 200;
    a_other.id_prefix = b_other.id_prefix = "other_";
    write_embeddings((dir_ / "a.h5").string(), synthetic_table(a), EmbeddingDtype::kFloat32);
    write_embeddings((dir_ / "b.h5").string(), synthetic_table(b), EmbeddingDtype::kFloat32);
    write_embeddings((dir_ / "a_other.h5").string(), synthetic_table(a_other), EmbeddingDtype::kFloat32);
    write_embeddings((dir_ / "b_other.h5").string(), synthetic_table(b_other), EmbeddingDtype::kFloat32);
    std::ofstream(dir_ / "tasks.json") << kTasks;

    ProbeConfig config;
    for (const char* arg : {"a=a.h5", "a:other=a_other.h5", "b=b.h5", "b:other=b_other.h5"}) {
      auto parsed = parse_embeddings_arg(arg);
      parsed.path = (dir_ / parsed.path).string();
      config.embeddings.push_back(parsed);
    }
    config.tasks = (dir_ / "tasks.json").string();
    config.out_dir = (dir_ / "out").string();
    config.track_energy = false;
    config.verbose = false;
    results_ = run_probe(config);
  }

  // sklearn_reference.py on the same files and bootstrap indices (one python run).
  static void run_reference() {
    // The bootstrap index sets of every test-set size, for python to score on.
    nlohmann::json indices;
    for (const auto& r : results_.records) indices[std::to_string(r.n_test)] = bootstrap_indices(r.n_test, 100, 42);
    write_json(dir_ / "indices.json", indices);
    nlohmann::json spec = {{"indices", (dir_ / "indices.json").string()}, {"tasks", python_tasks()}};
    for (const char* model : {"a", "b"})
      spec["models"][model] = {{"", (dir_ / (std::string(model) + ".h5")).string()},
                               {"other", (dir_ / (std::string(model) + "_other.h5")).string()}};
    write_json(dir_ / "spec.json", spec);
    ASSERT_EQ(run_python("sklearn_reference.py", (dir_ / "spec.json").string() + " " + (dir_ / "reference.json").string()), 0);
    reference_ = read_json(dir_ / "reference.json");
  }

  static const nlohmann::json& reference_record(const ProbeRecord& r) {
    for (const auto& ref : reference_["records"])
      if (ref["model"] == r.model && ref["task"] == r.task &&
          (r.cls ? ref["class"] == *r.cls : ref["class"].is_null()))
        return ref;
    throw std::runtime_error("no reference record for " + r.model + "/" + r.task);
  }

  void check_counts();
  void check_transfer_rows();
  void check_scores();
  void check_comparisons();
  void check_probabilities();

  static inline std::filesystem::path dir_;
  static inline ProbeResults results_;
  static inline nlohmann::json reference_;
  static inline std::string setup_error_;
};

void ProbeVsSklearn::check_counts() {
  EXPECT_TRUE(results_.errors.empty()) << results_.errors.front().message;
  // Six binary tasks: 1 row each; dr_grade: 5 classes; 2 models.
  EXPECT_EQ(results_.records.size(), 2u * (6 + 5));
  EXPECT_EQ(reference_["records"].size(), results_.records.size());
  EXPECT_EQ(results_.comparisons.size(), 6u + 5u);
}

// The site-transfer tasks train and test on the rows their side filters pick, counted here
// from the synthetic table itself (grade is never missing); check_scores compares the rest.
void ProbeVsSklearn::check_transfer_rows() {
  const EmbeddingTable table = synthetic_table(with_sites());
  const auto& site = table.labels.at("site").values;
  const auto& diabetes = table.labels.at("diabetes").values;
  const auto count = [&](const std::function<bool(size_t)>& keep) {
    int64_t n = 0;
    for (size_t i = 0; i < site.size(); ++i) n += keep(i);
    return n;
  };
  const std::map<std::string, std::pair<int64_t, int64_t>> expected = {
      {"any_dr_site_A_to_B",
       {count([&](size_t i) { return site[i] == 0; }), count([&](size_t i) { return site[i] == 1; })}},
      {"referable_diabetic_BC_to_A",
       {count([&](size_t i) { return table.split[i] == "train" && site[i] != 0 && diabetes[i] == 1; }),
        count([&](size_t i) { return site[i] == 0 && diabetes[i] == 1; })}},
  };
  size_t seen = 0;
  for (const auto& r : results_.records) {
    const auto found = expected.find(r.task);
    if (found == expected.end()) continue;
    ++seen;
    SCOPED_TRACE(r.model + "/" + r.task);
    EXPECT_EQ(r.n_train, found->second.first);
    EXPECT_EQ(r.n_test, found->second.second);
    const auto& ref = reference_record(r);
    std::cout << r.model << "/" << r.task << ": n_train " << r.n_train << ", n_test " << r.n_test << ", AUROC "
              << r.auroc << ", |AUROC - sklearn default| " << std::fabs(r.auroc - ref["auroc"].get<double>())
              << ", vs sklearn newton-cg " << std::fabs(r.auroc - ref["auroc_tight"].get<double>()) << "\n";
  }
  EXPECT_EQ(seen, 2u * expected.size());
}

void ProbeVsSklearn::check_scores() {
  double worst_default = 0, worst_tight = 0;
  for (const auto& r : results_.records) {
    SCOPED_TRACE(r.model + "/" + r.task + (r.cls ? "/" + std::to_string(*r.cls) : ""));
    const auto& ref = reference_record(r);
    EXPECT_EQ(r.n_train, ref["n_train"].get<int64_t>());
    EXPECT_EQ(r.n_test, ref["n_test"].get<int64_t>());
    // The published pipeline (lbfgs stops at its tolerance) and the tight optimum.
    EXPECT_NEAR(r.auroc, ref["auroc"].get<double>(), 2e-3);
    EXPECT_NEAR(r.auroc, ref["auroc_tight"].get<double>(), 1e-6);
    worst_default = std::max(worst_default, std::fabs(r.auroc - ref["auroc"].get<double>()));
    worst_tight = std::max(worst_tight, std::fabs(r.auroc - ref["auroc_tight"].get<double>()));
    EXPECT_NEAR(r.auroc_median, ref["auroc_median"].get<double>(), 2e-3);
    EXPECT_NEAR(r.auroc_median, ref["auroc_median_tight"].get<double>(), 1e-9);
    EXPECT_NEAR(r.auroc_ci_low, ref["auroc_ci_low_tight"].get<double>(), 1e-9);
    EXPECT_NEAR(r.auroc_ci_high, ref["auroc_ci_high_tight"].get<double>(), 1e-9);
    EXPECT_NEAR(r.auprc, ref["auprc"].get<double>(), 2e-3);
    EXPECT_NEAR(r.balanced_accuracy, ref["balanced_accuracy"].get<double>(), 0.02);
  }
  std::cout << "max |AUROC - sklearn default|: " << worst_default << ", vs sklearn newton-cg: " << worst_tight << "\n";
}

void ProbeVsSklearn::check_comparisons() {
  ASSERT_EQ(reference_["comparisons"].size(), results_.comparisons.size());
  for (const auto& c : results_.comparisons) {
    SCOPED_TRACE(c.task + (c.cls ? "/" + std::to_string(*c.cls) : ""));
    const nlohmann::json* ref = nullptr;
    for (const auto& candidate : reference_["comparisons"])
      if (candidate["task"] == c.task && (c.cls ? candidate["class"] == *c.cls : candidate["class"].is_null()))
        ref = &candidate;
    ASSERT_NE(ref, nullptr);
    EXPECT_EQ(c.best, (*ref)["best_tight"].get<std::string>());
    EXPECT_EQ(c.second, (*ref)["second_tight"].get<std::string>());
    const double p = (*ref)["p_value_tight"].get<double>();
    EXPECT_NEAR(c.p_value, p, 1e-12 + 1e-9 * p);
    EXPECT_EQ(c.outcome, p < 0.05 ? "win" : "tie");
  }
}

// StandardScaler + LogisticRegression directly: probabilities at sklearn's exact optimum.
void ProbeVsSklearn::check_probabilities() {
  const EmbeddingTable table = read_embeddings((dir_ / "a.h5").string());
  const auto tasks = load_tasks((dir_ / "tasks.json").string());
  for (const auto& task : {tasks[0], tasks[1]}) {
    SCOPED_TRACE(task.name);
    auto side = [&](const SplitRef& ref) {
      const TaskRows rows = select_rows(task, table, ref);
      at::Tensor x = at::empty({static_cast<int64_t>(rows.rows.size()), table.dim}, at::kFloat);
      for (size_t i = 0; i < rows.rows.size(); ++i)
        std::copy_n(table.row(rows.rows[i]), table.dim, x.data_ptr<float>() + i * table.dim);
      std::vector<int64_t> y(rows.target.begin(), rows.target.end());
      return std::make_pair(x, at::tensor(y, at::kLong));
    };
    const auto [x_train, y_train] = side(task.train);
    const auto [x_test, y_test] = side(task.test);
    StandardScaler scaler;
    scaler.fit(x_train);
    LogisticRegression probe;
    const int64_t classes = y_train.max().item<int64_t>() + 1;
    probe.fit(scaler.transform(x_train), y_train, classes);
    const at::Tensor proba = probe.predict_proba(scaler.transform(x_test));
    ProbeRecord key;
    key.model = "a";
    key.task = task.name;
    if (classes > 2) key.cls = 0;
    const auto& ref = reference_record(key);
    std::vector<double> flat_tight, flat_default;
    for (const auto& row : ref["proba_tight"]) for (double v : row) flat_tight.push_back(v);
    for (const auto& row : ref["proba"]) for (double v : row) flat_default.push_back(v);
    const at::Tensor expected_tight = at::tensor(flat_tight, at::kDouble).view_as(proba);
    const at::Tensor expected_default = at::tensor(flat_default, at::kDouble).view_as(proba);
    const double tight_error = (proba - expected_tight).abs().max().item<double>();
    const double default_error = (proba - expected_default).abs().max().item<double>();
    EXPECT_LT(tight_error, 1e-6);
    EXPECT_LT(default_error, 5e-3);
    std::cout << task.name << ": max |p - sklearn newton-cg| " << tight_error << ", max |p - sklearn default| "
              << default_error << ", Newton steps " << probe.iterations() << "\n";
  }
}

TEST_F(ProbeVsSklearn, MatchesSklearnPipeline) {
  run_reference();
  ASSERT_FALSE(reference_.is_null());
  {
    SCOPED_TRACE("records and comparisons");
    check_counts();
  }
  {
    SCOPED_TRACE("site-transfer rows");
    check_transfer_rows();
  }
  {
    SCOPED_TRACE("AUROC, bootstrap median and interval, AUPRC, balanced accuracy");
    check_scores();
  }
  {
    SCOPED_TRACE("Wilcoxon best vs second");
    check_comparisons();
  }
  {
    SCOPED_TRACE("predicted probabilities");
    check_probabilities();
  }
}

TEST_F(ProbeVsSklearn, WritesResultFiles) {
  const auto out = dir_ / "out";
  const auto json = read_json(out / "results.json");
  ASSERT_EQ(json["results"].size(), results_.records.size());
  for (const char* key : {"model", "task", "class", "auroc", "auroc_median", "auroc_ci_low", "auroc_ci_high", "auprc",
                          "balanced_accuracy", "n_train", "n_test"})
    EXPECT_TRUE(json["results"][0].contains(key)) << key;
  EXPECT_TRUE(json["results"][0]["class"].is_null());  // amd is binary
  // Each record's resamples, so an average over tasks can be resampled too (launcher/sweep_results.hpp).
  EXPECT_EQ(json["results"][0]["bootstrap"].size(), static_cast<size_t>(results_.bootstrap));
  for (const char* key : {"task", "class", "best", "second", "p_value", "outcome"})
    EXPECT_TRUE(json["comparisons"][0].contains(key)) << key;
  std::ifstream csv(out / "results.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "model,task,class,auroc,auroc_median,auroc_ci_low,auroc_ci_high,auprc,balanced_accuracy,n_train,n_test");
  std::stringstream md;
  md << std::ifstream(out / "results.md").rdbuf();
  EXPECT_NE(md.str().find("| model | amd | dr_grade [0] |"), std::string::npos) << md.str();
  EXPECT_NE(md.str().find("**"), std::string::npos);
  EXPECT_NE(md.str().find("## Wins"), std::string::npos);
}

}  // namespace
}  // namespace gf::eval
