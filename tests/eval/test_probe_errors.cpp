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
                                            (dir / "tasks.json").string()));
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
  // results.json lists the errors, and reads back through its typed reader as written.
  const auto json = testing::read_json(dir / "out" / "results.json");
  EXPECT_EQ(json["errors"].size(), results.errors.size());
  const auto back = read_results((dir / "out" / "results.json").string());
  ASSERT_TRUE(back);
  EXPECT_EQ(results_to_json(*back), json);
  EXPECT_EQ(back->errors.size(), results.errors.size());
}

TEST(ProbeErrors, WronglyTypedResultsFileNamesFileAndField) {
  const auto dir = scratch_dir();
  const std::string path = (dir / "results.json").string();
  testing::write_json(path, {{"models", {"a"}}, {"results", {{{"model", "a"}, {"task", "amd"}, {"auroc", "high"}}}}});
  try {
    read_results(path);
    FAIL() << "a wrongly typed results.json was read";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), (path + ": results[0].auroc: found \"high\", expected a number").c_str());
  }
  EXPECT_FALSE(read_results((dir / "absent.json").string()));
}

TEST(ProbeErrors, AutoTasksOnePerLabelColumn) {
  const auto dir = scratch_dir();
  write_embeddings((dir / "a.h5").string(), synthetic_table({}), EmbeddingDtype::kFloat16);
  const auto results = run_probe(config_for(dir, {"a=a.h5"}, "auto"));
  EXPECT_EQ(results.tasks, (std::vector<std::string>{"amd", "cdr", "diabetes", "grade"}));
  EXPECT_EQ(count_records(results, "amd", "a"), 1u);
  EXPECT_EQ(count_records(results, "diabetes", "a"), 1u);  // missing values left out
  EXPECT_EQ(count_records(results, "grade", "a"), 5u);
  ASSERT_NE(find_error(results, "cdr", "a"), nullptr);  // a continuous column is no class label
  EXPECT_NE(find_error(results, "cdr", "a")->message.find("expected integer classes"), std::string::npos);
  EXPECT_TRUE(results.comparisons.empty());  // one model: nothing to compare
}

// Columns that name rows are no tasks: the column the split grouped by (recorded by embed),
// "*_id" columns, and integer columns whose values are mostly distinct.
TEST(ProbeErrors, AutoTasksSkipIdLikeAndSplitColumns) {
  const auto dir = scratch_dir();
  EmbeddingTable table = synthetic_table({});
  LabelColumn patient, record_id, serial;
  for (int64_t i = 0; i < table.rows(); ++i) {
    patient.values.push_back(static_cast<double>(i / 2));  // two eyes each: grouped by the split
    record_id.values.push_back(static_cast<double>(i % 3));
    serial.values.push_back(static_cast<double>(1000 + i));
  }
  table.labels.emplace("patient", patient);
  table.labels.emplace("record_id", record_id);
  table.labels.emplace("serial", serial);
  table.split_by = "patient";
  write_embeddings((dir / "a.h5").string(), table, EmbeddingDtype::kFloat32);
  const auto results = run_probe(config_for(dir, {"a=a.h5"}, "auto"));
  EXPECT_EQ(results.tasks, (std::vector<std::string>{"amd", "cdr", "diabetes", "grade"}));
}

// Side filters apply to their side only, in addition to the task's; category names resolve to
// the column's values, and a name that does not is the task's error.
TEST(ProbeErrors, SideFiltersAndCategoryNames) {
  SyntheticOptions options;
  options.site = true;
  const EmbeddingTable table = synthetic_table(options);
  const auto& site = table.labels.at("site").values;
  const auto& diabetes = table.labels.at("diabetes").values;
  const auto task = parse_tasks(nlohmann::json::parse(R"([{"name": "t", "label": "amd",
      "filter": {"column": "diabetes", "equals": 1},
      "train": {"split": "all", "filter": {"column": "site", "equals": "B"}},
      "test": {"split": "all",
               "filter": [{"column": "site", "not_equals": "B"}, {"column": "site", "not_equals": 2}]}}])"),
                                "t")[0];
  const TaskRows train = select_rows(task, table, task.train), test = select_rows(task, table, task.test);
  int64_t n_train = 0, n_test = 0, n_diabetic = 0;
  for (int64_t i = 0; i < table.rows(); ++i) {
    n_train += diabetes[i] == 1 && site[i] == 1;
    n_test += diabetes[i] == 1 && site[i] == 0;
    n_diabetic += diabetes[i] == 1;
  }
  EXPECT_EQ(static_cast<int64_t>(train.rows.size()), n_train);
  EXPECT_EQ(static_cast<int64_t>(test.rows.size()), n_test);
  EXPECT_GT(n_train, 0);
  for (int64_t row : train.rows) EXPECT_TRUE(site[row] == 1 && diabetes[row] == 1) << row;
  for (int64_t row : test.rows) EXPECT_TRUE(site[row] == 0 && diabetes[row] == 1) << row;
  // Without a side filter, a side is the task's filters on its split.
  TaskSpec plain = task;
  plain.train.filters.clear();
  EXPECT_EQ(static_cast<int64_t>(select_rows(plain, table, plain.train).rows.size()), n_diabetic);

  const auto error = [&](const std::string& column, const std::string& category) {
    TaskSpec bad = task;
    bad.test.filters = {Condition{column, Condition::Op::kEq, 0, category}};
    try {
      select_rows(bad, table, bad.test);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("site", "Z"), R"(task t: filter column "site": found "Z", expected one of its categories ["A","B","C"])");
  EXPECT_EQ(error("diabetes", "yes"),
            R"(task t: filter column "diabetes": found "yes", expected a number (the column has no categories))");

  // Through the probe: the bad category is the task's error, the transfer task is scored.
  const auto dir = scratch_dir();
  write_embeddings((dir / "a.h5").string(), table, EmbeddingDtype::kFloat32);
  std::ofstream(dir / "tasks.json") << R"({"tasks": [
    {"name": "amd_B_to_A", "label": "amd", "train": {"split": "all", "filter": {"column": "site", "equals": "B"}},
     "test": {"split": "all", "filter": {"column": "site", "equals": "A"}}},
    {"name": "no_such_site", "label": "amd", "test": {"filter": {"column": "site", "equals": "Z"}}}
  ]})";
  const auto results = run_probe(config_for(dir, {"a=a.h5"}, (dir / "tasks.json").string()));
  ASSERT_EQ(results.records.size(), 1u);
  EXPECT_EQ(results.records[0].n_train, std::count(site.begin(), site.end(), 1.0));
  EXPECT_EQ(results.records[0].n_test, std::count(site.begin(), site.end(), 0.0));
  ASSERT_EQ(results.errors.size(), 1u);
  EXPECT_EQ(results.errors[0].task, "no_such_site");
  EXPECT_NE(results.errors[0].message.find(R"(task no_such_site: filter column "site": found "Z")"), std::string::npos)
      << results.errors[0].message;
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
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "train": {"filter": {"column": "site"}}}]})")
                .find("tasks[0].train.filter: found"),
            std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "test": {"filter": [{"column": "s", "equals": 1},
                                                                     {"column": "s", "equals": [1]}]}}]})")
                .find("tasks[0].test.filter[1]: found [1], expected a number or a category name"),
            std::string::npos);
  EXPECT_NE(message(R"({"tasks": [{"label": "a", "train": {"filters": []}}]})").find("tasks[0].train.filters: found"),
            std::string::npos);
  const auto tasks = parse_tasks(nlohmann::json::parse(R"([{"name": "r", "label": "dr_grade >= 2",
      "filter": [{"column": "diabetes", "equals": 1}, {"column": "site", "not_equals": 3}]}])"), "t");
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].column, "dr_grade");
  ASSERT_TRUE(tasks[0].threshold.has_value());
  EXPECT_TRUE(tasks[0].threshold->holds(2));
  EXPECT_FALSE(tasks[0].threshold->holds(1.5));
  EXPECT_EQ(tasks[0].filters.size(), 2u);
  EXPECT_TRUE(tasks[0].train.filters.empty());
  // Per-side filters; a category name is kept as a name, resolved per file by select_rows.
  const auto transfer = parse_tasks(nlohmann::json::parse(R"([{"name": "any_dr_site_A_to_B", "label": "dr_grade > 0",
      "filter": {"column": "diabetes", "equals": 1},
      "train": {"split": "all", "filter": {"column": "site", "equals": "A"}},
      "test": {"source": "x", "filter": [{"column": "site", "not_equals": "A"}, {"column": "cam", "equals": 2}]}}])"),
                                    "t");
  ASSERT_EQ(transfer.size(), 1u);
  EXPECT_EQ(transfer[0].filters.size(), 1u);
  EXPECT_EQ(transfer[0].train.split, "all");
  ASSERT_EQ(transfer[0].train.filters.size(), 1u);
  EXPECT_EQ(transfer[0].train.filters[0].column, "site");
  EXPECT_EQ(transfer[0].train.filters[0].category, "A");
  EXPECT_EQ(transfer[0].test.source, "x");
  EXPECT_EQ(transfer[0].test.split, "test");
  ASSERT_EQ(transfer[0].test.filters.size(), 2u);
  EXPECT_EQ(transfer[0].test.filters[0].op, Condition::Op::kNe);
  EXPECT_EQ(transfer[0].test.filters[0].category, "A");
  EXPECT_FALSE(transfer[0].test.filters[1].category.has_value());
  EXPECT_EQ(transfer[0].test.filters[1].value, 2);
  EXPECT_THROW(parse_embeddings_arg("noequals"), std::runtime_error);
  EXPECT_EQ(parse_embeddings_arg("green:idrid=x.h5").source, "idrid");
}

}  // namespace
}  // namespace gf::eval
