#pragma once
// Probe task definitions (the --tasks JSON file) and their targets on an embeddings table.
//
// {"tasks": [
//   {"name": "dr_grade", "label": "dr_grade", "kind": "multiclass"},
//   {"name": "referable_dr", "label": "dr_grade > 1", "kind": "binary"},
//   {"name": "any_dr_diabetic", "label": "dr_grade > 0",
//    "filter": {"column": "diabetes", "equals": 1}},
//   {"name": "brset_to_idrid", "label": "dr_grade > 0",
//    "train": {"source": "brset", "split": "all"}, "test": {"source": "idrid", "split": "train"}},
//   {"name": "any_dr_site_A_to_B", "label": "dr_grade > 0",
//    "train": {"split": "all", "filter": {"column": "site", "equals": "A"}},
//    "test": {"split": "all", "filter": {"column": "site", "equals": "B"}}}
// ]}
// label: a column, or "<column> <op> <number>" with op one of > >= < <= == != (a binary
// target; rows where the column is missing are left out). kind: "binary" (default for
// expressions) or "multiclass" (one multinomial probe, one-vs-rest AUROC per class); when
// absent it is inferred from the training values ({0,1} = binary). filter: one condition or
// a list (all must hold), each {"column", "equals" | "not_equals": value}, applied to train
// and test; value is a number, or a category name for a category column (labels/<c> with
// "categories"). train/test: source (the SOURCE of --embeddings MODEL:SOURCE=FILE; may be
// left out when each model has one file), split ("train", "test" or "all"; defaults "train"
// and "test") and filter (as above, for that side only, in addition to the task's).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eval/embeddings_file.hpp"

namespace gf::eval {

enum class TaskKind { kAuto, kBinary, kMulticlass };

struct Condition {
  enum class Op { kGt, kGe, kLt, kLe, kEq, kNe };
  std::string column;
  Op op = Op::kEq;
  double value = 0;
  // A filter value given as a category name: select_rows resolves it per file, whose
  // categories list gives the value.
  std::optional<std::string> category;

  bool holds(double x) const;  // false for a missing (NaN) x
};

struct SplitRef {
  std::string source;  // "" = the model's only file
  std::string split;   // "train" | "test" | "all"
  std::vector<Condition> filters;  // this side's, in addition to the task's
};

struct TaskSpec {
  std::string name;
  std::string column;                  // the label column
  std::optional<Condition> threshold;  // set for a derived binary target
  TaskKind kind = TaskKind::kAuto;
  std::vector<Condition> filters;
  SplitRef train{"", "train", {}};
  SplitRef test{"", "test", {}};
};

// Parses a tasks document; errors name `origin` (the file) and the field.
std::vector<TaskSpec> parse_tasks(const nlohmann::json& document, const std::string& origin);
std::vector<TaskSpec> load_tasks(const std::string& path);
// `--tasks auto`: one task per label column of the table, named after it, kind inferred;
// never the column the split grouped by (split_by) or an id-like one ("id", "*_id", or
// mostly distinct values).
std::vector<TaskSpec> auto_tasks(const EmbeddingTable& table);

// The rows of `table` a task uses for one side (split, the task's and the side's filters
// applied, missing targets dropped) and their targets as class values (0/1 for a derived
// target, else the column's values). Throws naming the task for a missing column or split,
// or a category name the filter column does not have.
struct TaskRows {
  std::vector<int64_t> rows;
  std::vector<double> target;
};
TaskRows select_rows(const TaskSpec& task, const EmbeddingTable& table, const SplitRef& side);

}  // namespace gf::eval
