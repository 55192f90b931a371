#include "eval/probe.hpp"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>

#include "base/error.hpp"
#include "base/parallel_for.hpp"
#include "dist/communicator.hpp"
#include "dist/world.hpp"
#include "energy/tracker.hpp"
#include "eval/probe_unit.hpp"
#include "eval/tasks.hpp"

namespace gf::eval {
namespace {

// This rank's share, serialised, gathered over the ranks; returns every rank's share.
std::vector<nlohmann::json> gather_json(const nlohmann::json& mine, dist::Communicator* communicator) {
  if (!communicator || communicator->size() == 1) return {mine};
  const std::string text = mine.dump();
  at::Tensor bytes = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
  std::copy(text.begin(), text.end(), bytes.data_ptr<uint8_t>());
  const at::Tensor lengths = communicator->all_gather(at::tensor({static_cast<int64_t>(text.size())}, at::kLong));
  const at::Tensor all = communicator->all_gatherv(bytes).contiguous();
  std::vector<nlohmann::json> shares;
  const uint8_t* data = all.data_ptr<uint8_t>();
  int64_t offset = 0;
  for (int r = 0; r < communicator->size(); ++r) {
    const int64_t length = lengths[r].item<int64_t>();
    shares.push_back(nlohmann::json::parse(data + offset, data + offset + length));
    offset += length;
  }
  return shares;
}

// Errors every model of a task shares (the task's own problem) become one entry without a model.
std::vector<ProbeError> collapse_errors(const std::vector<ProbeError>& errors, const std::vector<std::string>& models,
                                        const std::vector<std::string>& tasks) {
  std::vector<ProbeError> out;
  for (const auto& task : tasks) {
    std::map<std::string, std::vector<const ProbeError*>> by_message;
    std::vector<std::string> order;
    for (const auto& e : errors)
      if (e.task == task) {
        if (!by_message.count(e.message)) order.push_back(e.message);
        by_message[e.message].push_back(&e);
      }
    for (const auto& message : order) {
      const auto& group = by_message[message];
      if (group.size() == models.size() && models.size() > 1) {
        out.push_back({task, "", message});
      } else {
        for (const auto* e : group) out.push_back(*e);
      }
    }
  }
  return out;
}

std::string class_suffix(const ProbeRecord& r) { return r.cls ? " [" + std::to_string(*r.cls) + "]" : ""; }

}  // namespace

EmbeddingsArg parse_embeddings_arg(const std::string& text) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0 || equals + 1 == text.size())
    base::throw_found_expected("probe", "embeddings", base::shown(text), "MODEL=FILE or MODEL:SOURCE=FILE");
  EmbeddingsArg arg;
  arg.path = text.substr(equals + 1);
  const std::string name = text.substr(0, equals);
  const auto colon = name.find(':');
  arg.model = name.substr(0, colon);
  if (colon != std::string::npos) arg.source = name.substr(colon + 1);
  if (arg.model.empty() || (colon != std::string::npos && arg.source.empty()))
    base::throw_found_expected("probe", "embeddings", base::shown(text), "MODEL=FILE or MODEL:SOURCE=FILE");
  return arg;
}

namespace {

// Task order, then class, then model order (the order of the files and tables).
void sort_records(std::vector<ProbeRecord>& records, const std::vector<std::string>& tasks,
                  const std::vector<std::string>& models) {
  std::map<std::string, size_t> task_order, model_order;
  for (size_t i = 0; i < tasks.size(); ++i) task_order[tasks[i]] = i;
  for (size_t i = 0; i < models.size(); ++i) model_order[models[i]] = i;
  std::stable_sort(records.begin(), records.end(), [&](const ProbeRecord& a, const ProbeRecord& b) {
    if (a.task != b.task) return task_order[a.task] < task_order[b.task];
    if (a.cls != b.cls) return a.cls < b.cls;
    return model_order[a.model] < model_order[b.model];
  });
}

void print_results(const ProbeResults& results, size_t units, double total_seconds, const std::string& out_dir) {
  for (const auto& r : results.records)
    std::cout << "probe: " << r.task << class_suffix(r) << " " << r.model << ": AUROC " << std::setprecision(4)
              << r.auroc << ", median " << r.auroc_median << " [" << r.auroc_ci_low << ", " << r.auroc_ci_high << "]"
              << std::endl;
  for (const auto& c : results.comparisons)
    std::cout << "probe: " << c.task << (c.cls ? " [" + std::to_string(*c.cls) + "]" : "") << ": " << c.outcome
              << " for " << c.best << " over " << c.second << " (" << format_p_value(c.p_value) << ")" << std::endl;
  for (const auto& e : results.errors) std::cout << "probe: error: " << e.message << std::endl;
  std::cout << "probe: " << units << " (model, task) probes, " << std::setprecision(3)
            << (units ? total_seconds / static_cast<double>(units) : 0.0) << " s each on average; results in "
            << out_dir << "/results.{json,csv,md}" << std::endl;
}

}  // namespace

ProbeResults run_probe(const ProbeConfig& config) {
  const dist::World& world = dist::init_world();
  const std::unique_ptr<dist::Communicator> ranks = dist::make_stage_communicator(world);
  dist::Communicator* communicator = ranks.get();
  if (config.out_dir.empty()) base::throw_found_expected("probe", "out_dir", "\"\"", "an output folder");
  if (config.bootstrap < 1) throw base::FieldError("probe", "bootstrap", "found " + std::to_string(config.bootstrap) +
                                                     ", expected at least 1 resample");
  at::set_num_threads(base::resolve_threads(config.threads, world.local_size));

  std::vector<std::string> models;
  std::map<std::string, std::map<std::string, std::string>> files;
  for (const auto& arg : config.embeddings) {
    if (!files.count(arg.model)) models.push_back(arg.model);
    if (!files[arg.model].emplace(arg.source, arg.path).second)
      throw base::FieldError("probe", "embeddings", arg.model + (arg.source.empty() ? "" : ":" + arg.source) +
                               " is given twice, expected one file per model and source");
  }
  for (const auto& model : config.versus)
    if (std::find(models.begin(), models.end(), model) == models.end())
      throw base::FieldError("probe", "versus", "found " + base::shown(model) + ", expected a model of --embeddings");
  EmbeddingSources sources(models, files);
  const std::string& first_file = files.at(models.front()).begin()->second;
  const std::vector<TaskSpec> tasks = config.tasks == "auto" ? auto_tasks(sources.table(first_file)) : load_tasks(config.tasks);
  if (tasks.empty())
    throw std::runtime_error("probe: found no task" + std::string(config.tasks == "auto" ? " (" + first_file + " has no label column)" : " in " + config.tasks) +
                             ", expected at least one (--tasks FILE, or labels in the embeddings)");

  std::unique_ptr<energy::EnergyTracker> tracker;
  if (config.track_energy) {
    std::filesystem::create_directories(config.out_dir);
    tracker = std::make_unique<energy::EnergyTracker>(config.energy, world, communicator, config.out_dir);
    tracker->start();
    tracker->set_phase(energy::Phase::kEval);
  }

  // (task, model) units dealt round-robin over the ranks.
  const size_t units = tasks.size() * models.size();
  BootstrapSets bootstrap(config.bootstrap, config.seed);
  nlohmann::json share = {{"records", nlohmann::json::array()}, {"errors", nlohmann::json::array()}, {"seconds", 0.0}};
  double seconds = 0;
  for (size_t u = static_cast<size_t>(world.rank); u < units; u += static_cast<size_t>(world.size)) {
    const TaskSpec& task = tasks[u / models.size()];
    const std::string& model = models[u % models.size()];
    const UnitResult result = probe_unit(task, model, sources, bootstrap, config.logistic);
    seconds += result.seconds;
    for (const auto& r : result.records) share["records"].push_back(record_to_json(r, true));
    for (const auto& e : result.errors) share["errors"].push_back({{"task", e.task}, {"model", e.model}, {"message", e.message}});
    if (config.verbose)
      std::cout << "probe: [" << u + 1 << "/" << units << "] task " << task.name << ", model " << model << ": "
                << (result.errors.empty() ? "ok" : std::to_string(result.errors.size()) + " error(s)") << ", "
                << std::fixed << std::setprecision(2) << result.seconds << " s" << std::endl;
  }
  share["seconds"] = seconds;

  ProbeResults results;
  results.models = models;
  for (const auto& t : tasks) results.tasks.push_back(t.name);
  results.bootstrap = config.bootstrap;
  results.seed = config.seed;
  results.alpha = config.alpha;
  std::vector<ProbeError> errors;
  double total_seconds = 0;
  for (const auto& rank_share : gather_json(share, communicator)) {
    for (const auto& r : rank_share["records"]) results.records.push_back(record_from_json(r, "a rank's probe records"));
    for (const auto& e : rank_share["errors"]) errors.push_back({e["task"], e["model"], e["message"]});
    total_seconds += rank_share["seconds"].get<double>();
  }
  sort_records(results.records, results.tasks, models);
  results.errors = collapse_errors(errors, models, results.tasks);
  results.comparisons = compare_models(models, results.tasks, results.records, config.alpha);
  for (const auto& model : config.versus)
    for (auto& c : compare_against(model, models, results.tasks, results.records, config.alpha))
      results.versus.push_back(std::move(c));

  if (world.is_root()) {
    write_results(config.out_dir, results);
    // With no result the caller's one error line says it all; the reasons are in results.json.
    if (config.verbose && !results.records.empty()) print_results(results, units, total_seconds, config.out_dir);
  }
  if (tracker) {
    tracker->finish(0.0, 0.0);
    if (world.is_root()) tracker->print_summary(std::cout);
  }
  return results;
}

}  // namespace gf::eval
