#include "slurm/array_sweep.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <stdexcept>

#include "base/json_reader.hpp"
#include "slurm/sbatch_script.hpp"

namespace gf::slurm {
namespace {

using nlohmann::json;

// A model or dataset entry: a string is the value of `default_flag`, an object is a set of
// flags ({"split": "all"} -> --split all).
std::vector<std::string> entry_flags(const std::string& origin, const json& entry, const std::string& default_flag) {
  if (entry.is_string()) return {default_flag, entry.get<std::string>()};
  if (!entry.is_object() || entry.empty())
    throw std::runtime_error(origin + ": found " + entry.dump() + ", expected a path or an object of flags");
  std::vector<std::string> flags;
  for (const auto& [key, value] : entry.items()) {
    flags.push_back("--" + key);
    if (value.is_string()) flags.push_back(value.get<std::string>());
    else if (value.is_number() || value.is_boolean()) flags.push_back(value.dump());
    else throw std::runtime_error(origin + "." + key + ": found " + value.dump() + ", expected a string or number");
  }
  return flags;
}

}  // namespace

std::vector<SweepTask> load_sweep(const std::string& path, const std::string& run_dir) {
  const json sweep = base::load_json_file(path);
  for (const auto& [key, value] : sweep.items())
    if (key != "models" && key != "datasets" && key != "pairs")
      throw std::runtime_error(path + ": unknown key '" + key + "', expected models, datasets, pairs");
  for (const char* key : {"models", "datasets"})
    if (!sweep.contains(key) || !sweep[key].is_object() || sweep[key].empty())
      throw std::runtime_error(path + ": " + key + ": missing or empty, expected an object of name: entry");

  static const std::regex kName(R"(^[A-Za-z0-9_.+-]+$)");
  for (const char* key : {"models", "datasets"})
    for (const auto& [name, entry] : sweep[key].items())
      if (!std::regex_match(name, kName))
        throw std::runtime_error(path + ": " + key + ": name \"" + name + "\", expected letters, digits, _ . + - (it names files)");

  std::vector<std::pair<std::string, std::string>> pairs;
  if (sweep.contains("pairs")) {
    const json& list = sweep["pairs"];
    if (!list.is_array() || list.empty()) throw std::runtime_error(path + ": pairs: found " + list.dump() + ", expected a list of [model, dataset]");
    for (size_t i = 0; i < list.size(); ++i) {
      const json& p = list[i];
      const std::string where = path + ": pairs[" + std::to_string(i) + "]";
      if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string())
        throw std::runtime_error(where + ": found " + p.dump() + ", expected [\"model\", \"dataset\"]");
      if (!sweep["models"].contains(p[0].get<std::string>()))
        throw std::runtime_error(where + ": model \"" + p[0].get<std::string>() + "\" is not in models");
      if (!sweep["datasets"].contains(p[1].get<std::string>()))
        throw std::runtime_error(where + ": dataset \"" + p[1].get<std::string>() + "\" is not in datasets");
      pairs.emplace_back(p[0], p[1]);
    }
  } else {
    for (const auto& [model, m] : sweep["models"].items())
      for (const auto& [dataset, d] : sweep["datasets"].items()) pairs.emplace_back(model, dataset);
  }

  std::vector<SweepTask> tasks;
  for (const auto& [model, dataset] : pairs) {
    SweepTask t;
    t.model = model;
    t.dataset = dataset;
    t.output = run_dir + "/embeddings/" + model + "/" + dataset + "/embeddings.h5";
    t.args = entry_flags(path + ": models." + model, sweep["models"][model], "--weights");
    const auto data_flags = entry_flags(path + ": datasets." + dataset, sweep["datasets"][dataset], "--data");
    t.args.insert(t.args.end(), data_flags.begin(), data_flags.end());
    t.args.push_back("--out");
    t.args.push_back(t.output);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::vector<std::string> probe_commands(const std::vector<SweepTask>& tasks, const std::string& greenfound,
                                        const std::string& run_dir) {
  std::vector<std::string> datasets;
  std::map<std::string, std::vector<const SweepTask*>> by_dataset;
  for (const auto& t : tasks) {
    if (!by_dataset.count(t.dataset)) datasets.push_back(t.dataset);
    by_dataset[t.dataset].push_back(&t);
  }
  std::vector<std::string> commands;
  for (const auto& dataset : datasets) {
    std::string cmd = shell_quote(greenfound) + " probe --embeddings";
    for (const SweepTask* t : by_dataset[dataset]) cmd += " " + shell_quote(t->model + "=" + t->output);
    cmd += " --tasks auto --out " + shell_quote(run_dir + "/probe/" + dataset);
    commands.push_back(cmd);
  }
  return commands;
}

}  // namespace gf::slurm
