#include "launcher/sweep_plan.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "base/json_reader.hpp"
#include "launcher/config_file.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& problem) {
  throw base::FieldError(source, field, problem);
}

// A path of the sweep file, relative to its folder.
std::string beside(const fs::path& sweep_file, const std::string& path) {
  const fs::path p(path);
  return (p.is_absolute() ? p : sweep_file.parent_path() / p).lexically_normal().string();
}

// The same `--set key=value` a user would type: a string value as its text, anything else as JSON.
void assign(json& config, const std::string& key, const json& value) {
  apply_override(config, key + "=" + (value.is_string() ? value.get<std::string>() : value.dump()));
}

std::string name_part(const std::string& key, const json& value) {
  const std::string leaf = key.substr(key.rfind('.') + 1);
  std::string text = leaf + "-" + (value.is_string() ? value.get<std::string>() : value.dump());
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return text;
}

std::vector<json> expand_grid(const json& grid, const std::string& source) {
  std::vector<json> runs{json::object()};
  for (const auto& axis : grid.items()) {
    if (!axis.value().is_array() || axis.value().empty())
      fail(source, "grid." + axis.key(), "found " + axis.value().dump() + ", expected a non-empty array of values");
    std::vector<json> next;
    for (const json& run : runs)
      for (const json& value : axis.value()) {
        json r = run;
        r[axis.key()] = value;
        next.push_back(r);
      }
    runs = std::move(next);
  }
  return runs;
}

SweepEvaluation read_evaluation(const json& node, const std::string& name, const fs::path& file, const std::string& data) {
  SweepEvaluation e;
  base::Section section = base::Section::of(node, name, file.string());
  section.read("name", e.name);
  section.read("data", e.data);
  section.read("split", e.split);
  section.read("pool", e.pool);
  section.skip("tasks");  // a file name or an array
  section.finish();
  const json tasks = node.value("tasks", json());
  const std::string source = file.string();
  if (e.name.empty() || e.name.find('/') != std::string::npos) fail(source, "evaluation.name", "found '" + e.name + "', expected a folder name");
  e.data = e.data.empty() ? data : beside(file, e.data);
  if (e.data.empty()) fail(source, name + ".data", "found nothing (and no top-level data), expected a packed dataset folder");
  if (tasks.is_string()) e.tasks = base::load_json_file(beside(file, tasks.get<std::string>()));
  else if (tasks.is_array()) e.tasks = json{{"tasks", tasks}};
  else fail(source, "evaluation.tasks", "found " + tasks.dump() + ", expected a tasks file or an array of tasks");
  return e;
}

}  // namespace

bool RunState::finished(const std::string& stage) const {
  for (const auto& d : done)
    if (d == stage) return true;
  return false;
}

SweepPlan read_sweep(const std::string& path, const std::string& data_override) {
  const fs::path file = fs::absolute(path);
  const json root = base::load_json_file(file.string());
  base::Section top(root, "", file.string());
  json set = json::object(), grid;
  SweepPlan plan;
  plan.source = file.string();
  std::string data;
  top.read("data", data);
  data = !data_override.empty() ? fs::absolute(data_override).lexically_normal().string() : data.empty() ? "" : beside(file, data);
  top.read("set", set);
  top.read("grid", grid);
  top.read("ranks", plan.ranks);
  for (const char* key : {"base", "list", "evaluation"}) top.skip(key);  // not objects: read below
  top.finish();
  const json base_value = root.value("base", json()), list = root.value("list", json());
  const json evaluation = root.value("evaluation", json::array());
  if (!evaluation.is_array()) fail(file.string(), "evaluation", "found " + evaluation.dump() + ", expected an array");
  for (size_t i = 0; i < evaluation.size(); ++i)
    plan.evaluation.push_back(read_evaluation(evaluation[i], "evaluation[" + std::to_string(i) + "]", file, data));
  const std::string source = file.string();

  json base;
  if (base_value.is_string()) base = base::load_json_file(beside(file, base_value.get<std::string>()));
  else if (base_value.is_object()) base = base_value;
  else fail(source, "base", "found " + base_value.dump() + ", expected a config file or an inline config");
  for (const auto& item : set.items()) assign(base, item.key(), item.value());
  if (!data.empty()) base["data"]["path"] = data;
  if (plan.ranks < 1) fail(source, "ranks", "found " + std::to_string(plan.ranks) + ", expected an integer >= 1");
  if (plan.evaluation.empty()) fail(source, "evaluation", "found none, expected at least one dataset with tasks");

  std::vector<json> assignments;
  std::vector<std::string> names;
  if (!grid.is_null() == !list.is_null()) fail(source, "grid", "expected exactly one of grid and list");
  if (!grid.is_null()) {
    assignments = expand_grid(grid, source);
    for (const json& a : assignments) {
      std::string name;
      for (const auto& item : a.items()) name += (name.empty() ? "" : "_") + name_part(item.key(), item.value());
      names.push_back(name.empty() ? "base" : name);
    }
  } else {
    if (!list.is_array() || list.empty()) fail(source, "list", "found " + list.dump() + ", expected a non-empty array of runs");
    for (size_t i = 0; i < list.size(); ++i) {
      json a = list[i];
      if (!a.is_object()) fail(source, "list[" + std::to_string(i) + "]", "found " + a.dump() + ", expected an object");
      std::string name = a.value("name", "run-" + std::to_string(i));
      a.erase("name");
      names.push_back(name);
      assignments.push_back(a);
    }
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < assignments.size(); ++i) {
    SweepRun run;
    run.name = names[i];
    // The name is a folder under runs/: a path ("../x") would put the run elsewhere.
    const bool plain = !run.name.empty() && run.name != "." && run.name != ".." &&
                       std::all_of(run.name.begin(), run.name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
                       });
    if (!plain) fail(source, "list[" + std::to_string(i) + "].name", "found '" + run.name + "', expected a folder name of letters, digits, '.', '-', '_'");
    if (!seen.insert(run.name).second) fail(source, "runs", "found the name '" + run.name + "' twice, expected unique names");
    run.assignments = assignments[i];
    run.config = base;
    for (const auto& item : run.assignments.items()) assign(run.config, item.key(), item.value());
    // Validated now, so a bad axis value stops the sweep before any run starts.
    run.config = train::to_json(train::parse_run_config(run.config, source + " (run " + run.name + ")"));
    plan.runs.push_back(std::move(run));
  }
  return plan;
}

json plan_to_json(const SweepPlan& plan) {
  json runs = json::array(), evaluation = json::array();
  for (const auto& r : plan.runs) runs.push_back({{"name", r.name}, {"assignments", r.assignments}, {"config", r.config}});
  for (const auto& e : plan.evaluation)
    evaluation.push_back({{"name", e.name}, {"data", e.data}, {"split", e.split}, {"tasks", e.tasks}, {"pool", e.pool}});
  return {{"source", plan.source}, {"ranks", plan.ranks}, {"runs", runs}, {"evaluation", evaluation}};
}

SweepPlan plan_from_json(const json& j, const std::string& source) {
  SweepPlan plan;
  base::Section top(j, "", source);
  top.read("source", plan.source);
  top.read("ranks", plan.ranks);
  for (auto& r : top.children("runs")) {
    SweepRun run;
    r.read("name", run.name);
    r.read("assignments", run.assignments);
    r.read("config", run.config);
    r.finish();
    plan.runs.push_back(std::move(run));
  }
  for (auto& e : top.children("evaluation")) {
    SweepEvaluation ev;
    e.read("name", ev.name);
    e.read("data", ev.data);
    e.read("split", ev.split);
    e.read("tasks", ev.tasks);
    e.read("pool", ev.pool);
    e.finish();
    plan.evaluation.push_back(std::move(ev));
  }
  top.finish();
  return plan;
}

std::string run_dir(const std::string& sweep_dir, const std::string& run) { return (fs::path(sweep_dir) / "runs" / run).string(); }

RunState read_run_state(const std::string& dir) {
  RunState state;
  const std::string path = (fs::path(dir) / "sweep-state.json").string();
  if (!fs::exists(path)) return state;
  const json root = base::load_json_file(path);  // the Section reads it in place
  base::Section s(root, "", path);
  s.read("state", state.state);
  s.read("done", state.done);
  s.read("message", state.message);
  s.finish();
  return state;
}

void write_run_state(const std::string& dir, const RunState& state) {
  fs::create_directories(dir);
  const json j{{"state", state.state}, {"done", state.done}, {"message", state.message}};
  base::write_file_atomic((fs::path(dir) / "sweep-state.json").string(), j.dump(2) + "\n");
}

}  // namespace gf::launcher
