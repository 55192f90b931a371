// `greenfound status RUN_DIR`: the SLURM state of the run's jobs (slurm/scheduler.hpp), its
// progress from metrics.jsonl, the energy used so far from energy.csv, and each node's step,
// last report and energy.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "base/json_reader.hpp"
#include "energy/energy_csv.hpp"
#include "launcher/commands.hpp"
#include "launcher/sweep_results.hpp"
#include "slurm/scheduler.hpp"
#include "train/metrics_record.hpp"
#include "train/node_progress.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;

std::string duration(double seconds) {
  const long s = std::lround(seconds);
  char text[32];
  if (s >= 86400) std::snprintf(text, sizeof text, "%ldd %02ld:%02ld:%02ld", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
  else std::snprintf(text, sizeof text, "%02ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return text;
}

// What metrics.jsonl (one record per optimizer step, train/metrics_record.hpp) tells about progress.
struct Progress {
  std::optional<train::MetricsRecord> last;  // the newest complete record
  double step_seconds = NAN;                 // mean of the last kRecent records' time_s.step
  double steps_per_epoch = NAN;              // records of the longest finished epoch, when one has finished
};

Progress read_progress(const fs::path& file) {
  constexpr size_t kRecent = 20;
  const std::vector<train::MetricsRecord> records = train::read_metrics(file.string());
  Progress p;
  if (records.empty()) return p;
  p.last = records.back();
  const size_t first = records.size() > kRecent ? records.size() - kRecent : 0;
  double sum = 0;
  for (size_t i = first; i < records.size(); ++i) sum += records[i].time_s.step;
  p.step_seconds = sum / static_cast<double>(records.size() - first);
  std::map<int64_t, int64_t> per_epoch;
  for (const auto& record : records) per_epoch[record.epoch]++;
  if (per_epoch.size() > 1) {
    int64_t longest = 0;
    for (auto it = per_epoch.begin(); std::next(it) != per_epoch.end(); ++it) longest = std::max(longest, it->second);
    p.steps_per_epoch = static_cast<double>(longest);
  }
  return p;
}

// The run's resolved config.json (written by pretrain), nullopt when absent.
std::optional<train::RunConfig> read_run_config(const fs::path& run_dir) {
  const std::string path = (run_dir / "config.json").string();
  if (!fs::exists(path)) return std::nullopt;
  return train::parse_run_config(base::load_json_file(path), path);
}

// Total optimizer steps of the run: epochs x steps per epoch once an epoch has finished,
// capped by train.max_steps of the resolved config when that is set.
double total_steps(const Progress& progress, const std::optional<train::RunConfig>& config) {
  if (!config) return NAN;
  double total = progress.steps_per_epoch * static_cast<double>(config->optim.epochs);
  if (config->train.max_steps > 0) {
    const double max_steps = static_cast<double>(config->train.max_steps);
    total = std::isnan(total) ? max_steps : std::min(total, max_steps);
  }
  return total;
}

void print_progress(const fs::path& run_dir, const std::optional<train::RunConfig>& config) {
  const Progress progress = read_progress(run_dir / "metrics.jsonl");
  if (!progress.last) {
    std::cout << "progress: no metrics yet (" << (run_dir / "metrics.jsonl").string() << ")\n";
    return;
  }
  const train::MetricsRecord& record = *progress.last;
  std::ostringstream os;
  os << "progress: step " << record.step;
  const double total = total_steps(progress, config);
  if (!std::isnan(total)) os << "/" << static_cast<long>(total);
  os << ", epoch " << record.epoch + 1;  // 0-based in the records, shown as the progress bar counts
  if (config) os << "/" << config->optim.epochs;
  os << ", loss " << record.loss << ", " << std::lround(record.images_per_s * 10) / 10.0 << " images/s";
  const double step = static_cast<double>(record.step);
  if (!std::isnan(total) && !std::isnan(progress.step_seconds) && total > step)
    os << ", ETA " << duration((total - step) * progress.step_seconds);
  std::cout << os.str() << "\n";
}

struct EnergySoFar {
  double joules = 0;
  std::map<std::string, double> host_joules;  // per node (energy.csv's host column)
  std::set<std::string> labels;  // measured / estimated
  int files = 0;
};

// Adds one energy.csv. Its joules are cumulative per (rank, host, device, domain) within one
// run of a stage, and every run (a requeued job, a resumed run) starts a new count. The file
// marks no such start, but within a run the sampler writes every 1/sample_hz s: a drop in
// joules or a silence of `restart_gap_s` starts a new segment, and the previous segment's
// last value is kept.
void add_energy_csv(const fs::path& file, double restart_gap_s, EnergySoFar& sum) {
  struct Series {
    double carried = 0, last = 0, last_time = NAN;
    std::string host;
  };
  std::map<std::string, Series> series;
  for (const energy::EnergySample& sample : energy::read_energy_csv(file.string()).samples) {
    Series& s = series[std::to_string(sample.rank) + "|" + sample.host + "|" + sample.device + "|" + sample.domain];
    s.host = sample.host;
    if (sample.joules < s.last || sample.time - s.last_time > restart_gap_s) s.carried += s.last;
    s.last = sample.joules;
    s.last_time = sample.time;
    sum.labels.insert(sample.label);
  }
  for (const auto& [key, s] : series) {
    sum.joules += s.carried + s.last;
    if (!s.host.empty()) sum.host_joules[s.host] += s.carried + s.last;
  }
  sum.files += 1;
}

// One line per node: its ranks and step from RUN_DIR/nodes/<host>.json (train/node_progress.hpp),
// how long ago it last reported, and its energy so far.
void print_nodes(const fs::path& run_dir, const EnergySoFar& energy) {
  std::map<std::string, std::optional<train::NodeRecord>> nodes;
  for (train::NodeRecord& node : train::read_node_progress(run_dir.string())) nodes[node.host] = std::move(node);
  for (const auto& [host, joules] : energy.host_joules) nodes.emplace(host, std::nullopt);
  if (nodes.empty()) return;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::cout << "nodes: " << nodes.size() << "\n";
  for (const auto& [host, record] : nodes) {
    std::ostringstream os;
    os << "  node " << host << ":";
    if (record)
      os << " ranks " << record->ranks << ", step " << record->step << ", last report "
         << duration(std::max(0.0, now - record->time)) << " ago,";
    const auto joules = energy.host_joules.find(host);
    if (joules != energy.host_joules.end()) os << " energy " << std::lround(joules->second) << " J";
    else os << " energy unknown";
    std::cout << os.str() << "\n";
  }
}

// Every energy.csv under the run folder: pretrain's, and one per task of an embed sweep.
void print_energy(const fs::path& run_dir, const std::optional<train::RunConfig>& config) {
  const double sample_hz = config ? config->energy.sample_hz : energy::EnergyOptions{}.sample_hz;
  EnergySoFar sum;
  for (const auto& entry : fs::recursive_directory_iterator(run_dir, fs::directory_options::skip_permission_denied))
    if (entry.is_regular_file() && entry.path().filename() == "energy.csv")
      add_energy_csv(entry.path(), std::max(5.0, 5.0 / sample_hz), sum);
  if (sum.files == 0) {
    std::cout << "energy: no energy.csv yet\n";
    print_nodes(run_dir, sum);
    return;
  }
  std::ostringstream kwh;
  kwh << std::setprecision(3) << sum.joules / 3.6e6;
  std::string labels;
  for (const auto& label : sum.labels) labels += (labels.empty() ? "" : ", ") + label;
  std::cout << "energy so far: " << std::lround(sum.joules) << " J = " << kwh.str() << " kWh (" << labels << "; "
            << sum.files << (sum.files == 1 ? " file" : " files") << ")\n";
  print_nodes(run_dir, sum);
}

void print_job(const std::string& job_id, bool latest) {
  const auto state = slurm::query_job(job_id);
  std::cout << (latest ? "job " : "  earlier job ") << job_id << ": " << state.state;
  if (!state.reason.empty() && state.reason != "None") std::cout << " (" << state.reason << ")";
  if (state.restarts > 0) std::cout << ", requeued " << state.restarts << "x";
  if (!state.exit_code.empty() && state.state != "RUNNING" && state.state != "PENDING") std::cout << ", exit " << state.exit_code;
  if (!state.source.empty()) std::cout << "  [" << state.source << "]";
  std::cout << "\n";
  if (!latest) return;
  // A node SLURM holds down is why a job failed (NODE_FAIL) or cannot continue.
  for (const auto& [nodes, why] : slurm::unavailable_nodes(state.node_list))
    std::cout << "  node " << nodes << " is down: " << why << "\n";
  for (const auto& task : state.tasks) {
    std::cout << "  task " << task.job_id << ": " << task.state;
    if (!task.reason.empty() && task.reason != "None") std::cout << " (" << task.reason << ")";
    std::cout << "\n";
  }
}

// The run's (or sweep's) SLURM jobs, newest first with its array tasks.
void print_jobs(const fs::path& run_dir) {
  const auto ids = slurm::recorded_job_ids(run_dir.string());
  if (ids.empty()) {
    std::cout << "job: none recorded (" << (run_dir / "slurm" / "job_ids").string() << ")\n";
  } else if (!slurm::on_path("squeue") && !slurm::on_path("scontrol") && !slurm::on_path("sacct")) {
    std::cout << "job " << ids.back() << ": state unknown (no squeue, scontrol or sacct on PATH)\n";
  } else {
    print_job(ids.back(), true);
    for (size_t i = ids.size() - 1; i-- > 0;) print_job(ids[i], false);
  }
}

void run_status(const std::string& run_dir_arg) {
  if (is_sweep_dir(run_dir_arg)) {
    print_sweep_status(run_dir_arg, std::cout);  // one line per run
    // A sweep run by --slurm: its array jobs.
    const fs::path sweep_dir = fs::absolute(run_dir_arg).lexically_normal();
    if (!slurm::recorded_job_ids(sweep_dir.string()).empty()) print_jobs(sweep_dir);
    return;
  }
  const fs::path run_dir = fs::absolute(run_dir_arg).lexically_normal();
  if (!fs::is_directory(run_dir)) throw std::runtime_error(run_dir.string() + ": not a run folder (no such directory)");
  std::cout << "run: " << run_dir.string() << "\n";
  print_jobs(run_dir);
  const std::optional<train::RunConfig> config = read_run_config(run_dir);
  print_progress(run_dir, config);
  print_energy(run_dir, config);
}

}  // namespace

void setup_status(CLI::App& sub) {
  auto run_dir = std::make_shared<std::string>();
  sub.add_option("run_dir", *run_dir, "Run folder, or a sweep folder (one line per run)")->required();
  sub.callback([run_dir] { run_status(*run_dir); });
}

}  // namespace gf::launcher
