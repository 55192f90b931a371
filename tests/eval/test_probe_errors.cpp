// Bad input to the probe: each problem becomes an error naming its task (and model), and
// every other task still runs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "eval/probe.hpp"
#include "eval/tasks.hpp"
#include "tests/eval/eval_test_support.hpp"
#include "tests/eval/probe_fixture.hpp"

namespace gf::eval {
namespace {

using testing::scratch_dir;
using testing::synthetic_table;
using testing::SyntheticOptions;

const ProbeError* find_error(const ProbeResults& results, const std::string& task, const std::string& model) {
  for (const auto& e : results.errors)
    if (e.task == task && e.model == model) return &e;
  return nullptr;
}

size_t count_records(const ProbeResults& results, const std::string& task, const std::string& model) {
  return std::count_if(results.records.begin(), results.records.end(),
                       [&](const ProbeRecord& r) { return r.task == task && r.model == model; });
}

ProbeConfig config_for(const std::filesystem::path& dir, const std::vector<std::string>& args, const std::string& tasks) {
  ProbeConfig config;
  for (const auto& arg : args) {
    auto parsed = parse_embeddings_arg(arg);
    parsed.path = (dir / parsed.path).string();
    config.embeddings.push_back(parsed);
  }
  config.tasks = tasks;
  config.out_dir = (dir / "out").string();
  config.track_energy = false;
  config.verbose = false;
  config.bootstrap = 20;
  return config;
}

TEST(ProbeErrors, BadInputIsReportedPerTaskAndModel) {
  const auto dir = scratch_dir();
  SyntheticOptions options;
  options.rows = 160;
  EmbeddingTable a = synthetic_table(options);
  options.model_seed = 20;
  write_embeddings((dir / "a.h5").string(), a, EmbeddingDtype::kFloat32);
  write_embeddings((dir / "b.h5").string(), synthetic_table(options), EmbeddingDtype::kFloat32);
  EmbeddingTable with_nan = a;
  with_nan.values[5] = NAN;  // row 0
  write_embeddings((dir / "nan.h5").string(), with_nan, EmbeddingDtype::kFloat32);
  EmbeddingTable other_ids = a;
  other_ids.ids[3] = "someone_else";
  write_embeddings((dir / "ids.h5").string(), other_ids, EmbeddingDtype::kFloat32);
  // The same images in another order are fine: rows are matched by id.
  EmbeddingTable shuffled = a;
  std::reverse(shuffled.ids.begin(), shuffled.ids.end());
  std::reverse(shuffled.split.begin(), shuffled.split.end());
  for (auto& [name, column] : shuffled.labels) std::reverse(column.values.begin(), column.values.end());
  for (int64_t i = 0; i < a.rows(); ++i)
    std::copy_n(a.row(i), a.dim, shuffled.values.data() + (a.rows() - 1 - i) * a.dim);
  write_embeddings((dir / "shuffled.h5").string(), shuffled, EmbeddingDtype::kFloat32);

  std::ofstream(dir / "tasks.json") << R"({"tasks": [
    {"name": "missing", "label": "no_such_column"},
    {"name": "single", "label": "grade > 10"},
    {"name": "amd", "label": "amd"},
    {"name": "not_binary", "label": "grade", "kind": "binary"},
    {"name": "bad_filter", "label": "amd", "filter": {"column": "nope", "equals": 1}}
  ]})";
  const auto results = run_probe(config_for(dir, {"a=a.h5", "b=b.h5", "nan=nan.h5", "ids=ids.h5", "shuffled=shuffled.h5",
                                                  "gone=gone.h5"},
                                            (dir / "tasks.json").string()),
                                 dist::World{}, nullptr);
  for (const auto& e : results.errors) std::cout << e.task << " / " << (e.model.empty() ? "*" : e.model) << ": " << e.message << "\n";

  // Problems of the task itself: one entry, no model.
  const ProbeError* missing = find_error(results, "missing", "");
  ASSERT_NE(missing, nullptr);
  EXPECT_NE(missing->message.find("no_such_column"), std::string::npos);
  EXPECT_NE(missing->message.find("task missing"), std::string::npos);
  ASSERT_NE(find_error(results, "bad_filter", ""), nullptr);
  EXPECT_NE(find_error(results, "bad_filter", "")->message.find("nope"), std::string::npos);
  // A single-class training set and a non-binary "binary" label are the task's problems too.
  ASSERT_NE(find_error(results, "single", ""), nullptr);
  EXPECT_NE(find_error(results, "single", "")->message.find("single-class training set"), std::string::npos);
  ASSERT_NE(find_error(results, "not_binary", ""), nullptr);
  EXPECT_NE(find_error(results, "not_binary", "")->message.find("expected 0/1"), std::string::npos);
  EXPECT_EQ(results.errors.size(), 4u + 3u);  // 4 task-level, 3 model-level (amd)
  // Problems of one model's file: named with the model, the other models still scored.
  ASSERT_NE(find_error(results, "amd", "nan"), nullptr);
  EXPECT_NE(find_error(results, "amd", "nan")->message.find("non-finite"), std::string::npos);
  EXPECT_NE(find_error(results, "amd", "nan")->message.find("model nan"), std::string::npos);
  ASSERT_NE(find_error(results, "amd", "ids"), nullptr);
  EXPECT_NE(find_error(results, "amd", "ids")->message.find("ids differ from model a"), std::string::npos);
  ASSERT_NE(find_error(results, "amd", "gone"), nullptr);
  EXPECT_NE(find_error(results, "amd", "gone")->message.find("model gone: "), std::string::npos);
  EXPECT_NE(find_error(results, "amd", "gone")->message.find("gone.h5: no such embeddings file"), std::string::npos);
  EXPECT_EQ(count_records(results, "amd", "a"), 1u);
  EXPECT_EQ(count_records(results, "amd", "b"), 1u);
  EXPECT_EQ(count_records(results, "amd", "shuffled"), 1u);
  EXPECT_EQ(count_records(results, "amd", "nan"), 0u);
  // Reordered rows give the very same probe.
  const auto record = [&](const std::string& model) {
    return *std::find_if(results.records.begin(), results.records.end(),
                         [&](const ProbeRecord& r) { return r.task == "amd" && r.model == model; });
  };
  EXPECT_NEAR(record("shuffled").auroc, record("a").auroc, 1e-9);
  // results.json lists the errors.
  const auto json = testing::read_json(dir / "out" / "results.json");
  EXPECT_EQ(json["errors"].size(), results.errors.size());
}

TEST(ProbeErrors, AutoTasksOnePerLabelColumn) {
  const auto dir = scratch_dir();
  write_embeddings((dir / "a.h5").string(), synthetic_table({}), EmbeddingDtype::kFloat16);
  const auto results = run_probe(config_for(dir, {"a=a.h5"}, "auto"), dist::World{}, nullptr);
  EXPECT_EQ(results.tasks, (std::vector<std::string>{"amd", "cdr", "diabetes", "grade"}));
  EXPECT_EQ(count_records(results, "amd", "a"), 1u);
  EXPECT_EQ(count_records(results, "diabetes", "a"), 1u);  // missing values left out
  EXPECT_EQ(count_records(results, "grade", "a"), 5u);
  ASSERT_NE(find_error(results, "cdr", "a"), nullptr);  // a continuous column is no class label
  EXPECT_NE(find_error(results, "cdr", "a")->message.find("expected integer classes"), std::string::npos);
  EXPECT_TRUE(results.comparisons.empty());  // one model: nothing to compare
}

TEST(ProbeErrors, TaskFileErrorsNameTheField) {
  auto message = [](const char* text) {
    try {
      parse_tasks(nlohmann::json::parse(text), "tasks.json");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"tasks": [{"label": "grade >> 1"}]})").find("tasks.json: tasks[0].label"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "colour": 1}]})").find("tasks[0].colour: unknown key"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "kind": "ordinal"}]})").find("tasks[0].kind"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a"}, {"label": "a"}]})").find("used twice"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "filter": {"column": "d"}}]})").find("tasks[0].filter"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "test": {"split": "val"}}]})").find("tasks[0].test.split"), std::string::npos);
  EXPECT_NE(message(R"({"tasks": []})").find("non-empty"), std::string::npos);
  const auto tasks = parse_tasks(nlohmann::json::parse(R"([{"name": "r", "label": "dr_grade >= 2",
      "filter": [{"column": "diabetes", "equals": 1}, {"column": "site", "not_equals": 3}]}])"), "t");
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].column, "dr_grade");
  ASSERT_TRUE(tasks[0].threshold.has_value());
  EXPECT_TRUE(tasks[0].threshold->holds(2));
  EXPECT_FALSE(tasks[0].threshold->holds(1.5));
  EXPECT_EQ(tasks[0].filters.size(), 2u);
  EXPECT_THROW(parse_embeddings_arg("noequals"), std::runtime_error);
  EXPECT_EQ(parse_embeddings_arg("green:idrid=x.h5").source, "idrid");
}

}  // namespace
}  // namespace gf::eval
