#pragma once
// What `greenfound status` and `report` show of a sweep folder (launcher/sweep_plan.hpp):
// per run its state and progress, its measured pretraining bill (energy.json) and its probe
// AUROC per task and averaged over tasks, each with a bootstrap interval.
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "energy/tracker.hpp"
#include "launcher/sweep_plan.hpp"
#include "train/metrics_record.hpp"

namespace gf::launcher {

struct TaskScore {
  std::string task;            // "<evaluation>/<task>", or "mean over tasks"
  double auroc = 0;            // binary: the record's; multiclass: mean over its classes
  double low = 0, high = 0;    // bootstrap 2.5 / 97.5 percentiles
  std::vector<double> bootstrap;
};

struct SweepRunResult {
  std::string name;
  nlohmann::json assignments;
  RunState state;
  std::optional<train::MetricsRecord> last;   // newest metrics.jsonl record
  int64_t epochs = 0;                         // optim.epochs of its config
  std::optional<energy::EnergySummary> energy;  // pretraining bill, summed over its sessions
  int energy_sessions = 0;                      // pretrain sessions the bill sums (a resumed run: > 1)
  std::string energy_label;                   // measured / estimated / mixed (of every domain with energy)
  std::vector<TaskScore> tasks;               // in evaluation and task order
  std::optional<TaskScore> mean;              // when every task has a score
};

bool is_sweep_dir(const std::string& dir);  // holds sweep.json
std::vector<SweepRunResult> read_sweep_results(const std::string& sweep_dir);

// One line per run: state, step and epoch, mean AUROC when done.
void print_sweep_status(const std::string& sweep_dir, std::ostream& out);

}  // namespace gf::launcher
