#include "launcher/sweep_results.hpp"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "base/json_reader.hpp"
#include "eval/results.hpp"
#include "eval/statistics.hpp"

namespace gf::launcher {

namespace fs = std::filesystem;

namespace {

// Elementwise mean of equally long bootstrap vectors (the same resample index across them).
std::vector<double> mean_bootstrap(const std::vector<const std::vector<double>*>& vectors) {
  std::vector<double> mean(vectors.front()->size(), 0.0);
  for (const auto* v : vectors)
    for (size_t i = 0; i < mean.size() && i < v->size(); ++i) mean[i] += (*v)[i] / static_cast<double>(vectors.size());
  return mean;
}

TaskScore from_bootstrap(std::string task, double auroc, std::vector<double> bootstrap) {
  TaskScore s{std::move(task), auroc, eval::percentile(bootstrap, 2.5), eval::percentile(bootstrap, 97.5), {}};
  s.bootstrap = std::move(bootstrap);
  return s;
}

// Per task of one results.json: a binary task's record as the probe wrote it, a multiclass
// task's classes averaged (AUROC and, resample by resample, the bootstrap).
void add_scores(const eval::ProbeResults& results, const std::string& evaluation, std::vector<TaskScore>& out) {
  for (const auto& task : results.tasks) {
    std::vector<const eval::ProbeRecord*> rows;
    for (const auto& r : results.records)
      if (r.task == task) rows.push_back(&r);
    if (rows.empty()) continue;
    const std::string name = evaluation + "/" + task;
    if (rows.size() == 1 && !rows.front()->cls) {
      out.push_back({name, rows.front()->auroc, rows.front()->auroc_ci_low, rows.front()->auroc_ci_high, rows.front()->bootstrap});
      continue;
    }
    double auroc = 0;
    std::vector<const std::vector<double>*> boots;
    for (const auto* r : rows) {
      auroc += r->auroc / static_cast<double>(rows.size());
      boots.push_back(&r->bootstrap);
    }
    out.push_back(from_bootstrap(name, auroc, mean_bootstrap(boots)));
  }
}

// The run's pretraining bill: the sum of its sessions' energy.json (launcher/sweep_plan.hpp),
// or energy.json alone for a run made before the sweep kept sessions.
std::optional<energy::EnergySummary> total_bill(const fs::path& dir, int* sessions) {
  std::vector<energy::EnergySummary> parts;
  for (int k = 0;; ++k) {
    auto part = energy::read_energy_summary((dir / kEnergySessionsDir / (std::to_string(k) + ".json")).string());
    if (!part) break;
    parts.push_back(std::move(*part));
  }
  if (parts.empty())
    if (auto only = energy::read_energy_summary((dir / "energy.json").string())) parts.push_back(std::move(*only));
  *sessions = static_cast<int>(parts.size());
  if (parts.empty()) return std::nullopt;
  energy::EnergySummary sum = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto& p = parts[i];
    for (double energy::EnergySummary::*field :
         {&energy::EnergySummary::duration_s, &energy::EnergySummary::joules, &energy::EnergySummary::kwh,
          &energy::EnergySummary::kwh_x_pue, &energy::EnergySummary::co2e_kg, &energy::EnergySummary::device_hours,
          &energy::EnergySummary::energy_cost, &energy::EnergySummary::device_cost, &energy::EnergySummary::cost,
          &energy::EnergySummary::images, &energy::EnergySummary::flops})
      sum.*field += p.*field;
    for (size_t d = 0; d < sum.domains.size(); ++d) {
      sum.domains[d].joules += p.domains[d].joules;
      sum.domains[d].label = energy::combine_labels(sum.domains[d].label, p.domains[d].label);
    }
  }
  return sum;
}

}  // namespace

bool is_sweep_dir(const std::string& dir) { return fs::is_regular_file(fs::path(dir) / "sweep.json"); }

std::vector<SweepRunResult> read_sweep_results(const std::string& sweep_dir) {
  const std::string plan_path = (fs::path(sweep_dir) / "sweep.json").string();
  const SweepPlan plan = plan_from_json(base::load_json_file(plan_path), plan_path);
  std::vector<SweepRunResult> out;
  for (const auto& run : plan.runs) {
    const std::string dir = run_dir(sweep_dir, run.name);
    SweepRunResult r;
    r.name = run.name;
    r.assignments = run.assignments;
    r.state = read_run_state(dir);
    r.epochs = run.config.at("optim").at("epochs").get<int64_t>();
    const std::string metrics = (fs::path(dir) / "metrics.jsonl").string();
    if (fs::exists(metrics)) {
      const auto records = train::read_metrics(metrics);
      if (!records.empty()) r.last = records.back();
    }
    r.energy = total_bill(fs::path(dir), &r.energy_sessions);
    if (r.energy) {
      energy::Label label = energy::Label::kUnavailable;
      for (const auto& d : r.energy->domains) label = energy::combine_labels(label, d.label);
      r.energy_label = energy::label_name(label);
    }
    bool complete = true;
    for (const auto& e : plan.evaluation) {
      const auto results = eval::read_results((fs::path(dir) / "probe" / e.name / "results.json").string());
      if (results) add_scores(*results, e.name, r.tasks);
      else complete = false;
    }
    if (complete && !r.tasks.empty()) {
      double auroc = 0;
      std::vector<const std::vector<double>*> boots;
      for (const auto& t : r.tasks) {
        auroc += t.auroc / static_cast<double>(r.tasks.size());
        boots.push_back(&t.bootstrap);
      }
      r.mean = from_bootstrap("mean over tasks", auroc, mean_bootstrap(boots));
    }
    out.push_back(std::move(r));
  }
  return out;
}

void print_sweep_status(const std::string& sweep_dir, std::ostream& out) {
  const auto runs = read_sweep_results(sweep_dir);
  size_t width = 4;
  for (const auto& r : runs) width = std::max(width, r.name.size());
  std::map<std::string, int> counts;
  out << "sweep: " << fs::absolute(sweep_dir).lexically_normal().string() << " (" << runs.size() << " runs)\n";
  for (const auto& r : runs) {
    ++counts[r.state.state];
    std::ostringstream line;
    line << std::left << std::setw(static_cast<int>(width)) << r.name << "  " << std::setw(11) << r.state.state;
    if (r.last) line << "  step " << r.last->step << ", epoch " << r.last->epoch + 1 << "/" << r.epochs;
    else line << "  no steps yet, epochs " << r.epochs;
    if (r.mean) line << std::fixed << std::setprecision(3) << "  mean AUROC " << r.mean->auroc << " [" << r.mean->low << ", " << r.mean->high << "]";
    if (!r.state.message.empty() && r.state.state != "done") line << "  (" << r.state.message << ")";
    out << line.str() << "\n";
  }
  out << "total:";
  for (const auto& [state, n] : counts) out << " " << n << " " << state;
  out << "\n";
}

}  // namespace gf::launcher
