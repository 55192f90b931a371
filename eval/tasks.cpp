#include "eval/tasks.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <stdexcept>

#include "base/json_reader.hpp"

namespace gf::eval {
namespace {

// A column that names rows rather than describing them: "id", "*_id", or integer (category)
// values mostly distinct (more distinct values than half its labelled rows). A continuous
// column stays a task: the probe says why it cannot be one.
bool is_id_like(const std::string& name, const LabelColumn& column) {
  if (name == "id" || (name.size() > 3 && name.compare(name.size() - 3, 3, "_id") == 0)) return true;
  if (!column.integer) return false;
  std::set<double> distinct;
  size_t labelled = 0;
  for (double v : column.values)
    if (!std::isnan(v)) distinct.insert(v), ++labelled;
  return labelled >= 10 && distinct.size() * 2 > labelled;
}

Condition::Op parse_op(const std::string& op) {
  if (op == ">") return Condition::Op::kGt;
  if (op == ">=") return Condition::Op::kGe;
  if (op == "<") return Condition::Op::kLt;
  if (op == "<=") return Condition::Op::kLe;
  if (op == "==") return Condition::Op::kEq;
  return Condition::Op::kNe;
}

// libstdc++'s std::regex recurses once per character: a 300 KB label overflowed the stack of
// `probe`. A label is a column name and a number; a longer one is refused before matching.
constexpr size_t kMaxLabelBytes = 1024;

// "column" or "column <op> number".
void parse_label(const std::string& text, TaskSpec& task, const std::string& where) {
  if (text.size() > kMaxLabelBytes)
    throw std::runtime_error(where + ".label: found a label of " + std::to_string(text.size()) + " bytes, expected at most " +
                             std::to_string(kMaxLabelBytes));
  static const std::regex kExpression(R"(^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9]+(\.[0-9]*)?)\s*$)");
  static const std::regex kColumn(R"(^\s*([A-Za-z0-9_.\-]+)\s*$)");
  std::smatch match;
  if (std::regex_match(text, match, kExpression)) {
    task.column = match[1];
    task.threshold = Condition{match[1], parse_op(match[2]), std::stod(match[3]), std::nullopt};
  } else if (std::regex_match(text, match, kColumn)) {
    task.column = match[1];
  } else {
    throw std::runtime_error(where + ".label: found \"" + text +
                             "\", expected a column name or \"<column> <op> <number>\" (op: > >= < <= == !=)");
  }
}

Condition parse_filter(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("column") || !j["column"].is_string())
    throw std::runtime_error(where + ": found " + j.dump() +
                             R"(, expected {"column": NAME, "equals" | "not_equals": NUMBER | CATEGORY})");
  Condition condition;
  condition.column = j["column"].get<std::string>();
  const bool equals = j.contains("equals"), not_equals = j.contains("not_equals");
  if (equals == not_equals || j.size() != 2)
    throw std::runtime_error(where + ": found " + j.dump() + R"(, expected exactly one of "equals" or "not_equals")");
  const auto& value = equals ? j["equals"] : j["not_equals"];
  if (!value.is_number() && !value.is_string())
    throw std::runtime_error(where + ": found " + value.dump() + ", expected a number or a category name");
  condition.op = equals ? Condition::Op::kEq : Condition::Op::kNe;
  if (value.is_string()) condition.category = value.get<std::string>();
  else condition.value = value.get<double>();
  return condition;
}

// One condition or a list of them.
std::vector<Condition> parse_filters(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) return {parse_filter(j, where)};
  std::vector<Condition> filters;
  for (size_t i = 0; i < j.size(); ++i) filters.push_back(parse_filter(j[i], where + "[" + std::to_string(i) + "]"));
  return filters;
}

SplitRef parse_split_ref(const nlohmann::json& j, SplitRef defaults, const std::string& where) {
  if (!j.is_object())
    throw std::runtime_error(where + ": found " + j.dump() + R"(, expected {"source", "split", "filter"})");
  for (const auto& [key, value] : j.items()) {
    if (key == "source" && value.is_string()) {
      defaults.source = value.get<std::string>();
    } else if (key == "split" && value.is_string()) {
      defaults.split = value.get<std::string>();
      if (defaults.split != "train" && defaults.split != "test" && defaults.split != "all")
        throw std::runtime_error(where + ".split: found \"" + defaults.split + "\", expected train, test or all");
    } else if (key == "filter") {
      defaults.filters = parse_filters(value, where + ".filter");
    } else {
      throw std::runtime_error(where + "." + key + ": found " + value.dump() +
                               ", expected source or split strings, or filter");
    }
  }
  return defaults;
}

// The value a category column stores for the filter's category name.
double category_value(const std::string& task, const Condition& filter, const LabelColumn& column) {
  const std::string found =
      "task " + task + ": filter column \"" + filter.column + "\": found \"" + *filter.category + "\"";
  if (column.categories.empty())
    throw std::runtime_error(found + ", expected a number (the column has no categories)");
  const auto match = std::find(column.categories.begin(), column.categories.end(), *filter.category);
  if (match == column.categories.end()) {
    // Names read from a file: invalid UTF-8 is replaced rather than thrown on.
    const auto names = nlohmann::json(column.categories).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    throw std::runtime_error(found + ", expected one of its categories " + names);
  }
  return static_cast<double>(match - column.categories.begin());
}

TaskSpec parse_task(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("label") || !j["label"].is_string())
    throw std::runtime_error(where + R"(: expected an object with a "label" string)");
  TaskSpec task;
  parse_label(j["label"].get<std::string>(), task, where);
  task.name = j.value("name", j["label"].get<std::string>());
  for (const auto& [key, value] : j.items()) {
    if (key == "name" || key == "label") {
      if (!value.is_string()) throw std::runtime_error(where + "." + key + ": expected a string");
    } else if (key == "kind") {
      const std::string kind = value.is_string() ? value.get<std::string>() : value.dump();
      if (kind == "binary") task.kind = TaskKind::kBinary;
      else if (kind == "multiclass") task.kind = TaskKind::kMulticlass;
      else throw std::runtime_error(where + ".kind: found \"" + kind + "\", expected binary or multiclass");
    } else if (key == "filter") {
      task.filters = parse_filters(value, where + ".filter");
    } else if (key == "train") {
      task.train = parse_split_ref(value, task.train, where + ".train");
    } else if (key == "test") {
      task.test = parse_split_ref(value, task.test, where + ".test");
    } else {
      throw std::runtime_error(where + "." + key + ": unknown key, expected name, label, kind, filter, train or test");
    }
  }
  if (task.threshold && task.kind == TaskKind::kMulticlass)
    throw std::runtime_error(where + ".kind: a derived target (" + j["label"].get<std::string>() +
                             ") is binary, found multiclass");
  return task;
}

}  // namespace

bool Condition::holds(double x) const {
  if (std::isnan(x)) return false;
  switch (op) {
    case Op::kGt: return x > value;
    case Op::kGe: return x >= value;
    case Op::kLt: return x < value;
    case Op::kLe: return x <= value;
    case Op::kEq: return x == value;
    case Op::kNe: return x != value;
  }
  return false;
}

std::vector<TaskSpec> parse_tasks(const nlohmann::json& document, const std::string& origin) {
  const nlohmann::json* list = &document;
  if (document.is_object()) {
    if (!document.contains("tasks")) throw std::runtime_error(origin + R"(: expected a "tasks" list)");
    list = &document["tasks"];
  }
  if (!list->is_array() || list->empty())
    throw std::runtime_error(origin + ": tasks: expected a non-empty list of task objects");
  std::vector<TaskSpec> tasks;
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string where = origin + ": tasks[" + std::to_string(i) + "]";
    tasks.push_back(parse_task((*list)[i], where));
    if (!names.insert(tasks.back().name).second)
      throw std::runtime_error(where + ".name: \"" + tasks.back().name + "\" is used twice, expected unique names");
  }
  return tasks;
}

std::vector<TaskSpec> load_tasks(const std::string& path) {
  return parse_tasks(base::load_json_file(path, base::JsonTop::kAny), path);
}

std::vector<TaskSpec> auto_tasks(const EmbeddingTable& table) {
  std::vector<TaskSpec> tasks;
  for (const auto& [name, column] : table.labels) {
    if (name == table.split_by || is_id_like(name, column)) continue;
    TaskSpec task;
    task.name = name;
    task.column = name;
    tasks.push_back(task);
  }
  return tasks;
}

TaskRows select_rows(const TaskSpec& task, const EmbeddingTable& table, const SplitRef& side) {
  const auto column = table.labels.find(task.column);
  if (column == table.labels.end())
    throw std::runtime_error("task " + task.name + ": label column \"" + task.column +
                             "\" is not in the embeddings file (labels/)");
  std::vector<Condition> filters = task.filters;
  filters.insert(filters.end(), side.filters.begin(), side.filters.end());
  std::vector<const std::vector<double>*> filter_columns;
  for (auto& filter : filters) {
    const auto found = table.labels.find(filter.column);
    if (found == table.labels.end())
      throw std::runtime_error("task " + task.name + ": filter column \"" + filter.column +
                               "\" is not in the embeddings file (labels/)");
    if (filter.category) filter.value = category_value(task.name, filter, found->second);
    filter_columns.push_back(&found->second.values);
  }
  const std::string& split = side.split;
  if (split != "all" && table.split.empty())
    throw std::runtime_error("task " + task.name + ": split \"" + split +
                             "\" asked for, but the embeddings file has no split dataset (use split \"all\")");
  TaskRows selected;
  for (int64_t i = 0; i < table.rows(); ++i) {
    if (split != "all" && table.split[i] != split) continue;
    bool kept = true;
    for (size_t f = 0; f < filters.size() && kept; ++f) kept = filters[f].holds((*filter_columns[f])[i]);
    const double value = column->second.values[i];
    if (!kept || std::isnan(value)) continue;
    selected.rows.push_back(i);
    selected.target.push_back(task.threshold ? (task.threshold->holds(value) ? 1.0 : 0.0) : value);
  }
  return selected;
}

}  // namespace gf::eval
