// `greenfound status RUN_DIR`: the SLURM state of the run's jobs (slurm/scheduler.hpp), its
// progress from metrics.jsonl, the energy used so far from energy.csv, and each node's step,
// last report and energy.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "launcher/commands.hpp"
#include "slurm/scheduler.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string duration(double seconds) {
  const long s = std::lround(seconds);
  char text[32];
  if (s >= 86400) std::snprintf(text, sizeof text, "%ldd %02ld:%02ld:%02ld", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
  else std::snprintf(text, sizeof text, "%02ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return text;
}

// What metrics.jsonl (one record per optimizer step, train/run_log.hpp) tells about progress.
struct Progress {
  json last;                 // the newest complete record (a torn last line is skipped)
  double step_seconds = NAN; // mean of the last kRecent records' time_s.step
  double steps_per_epoch = NAN;  // records of the longest finished epoch, when one has finished
};

Progress read_progress(const fs::path& file) {
  constexpr size_t kRecent = 20;
  std::ifstream in(file);
  Progress p;
  std::vector<double> recent;
  std::map<long, long> per_epoch;
  for (std::string line; std::getline(in, line);) {
    auto record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) continue;
    if (record.contains("epoch") && record["epoch"].is_number()) per_epoch[record["epoch"].get<long>()]++;
    if (record.contains("time_s") && record["time_s"].is_object() && record["time_s"].contains("step") &&
        record["time_s"]["step"].is_number()) {
      recent.push_back(record["time_s"]["step"].get<double>());
      if (recent.size() > kRecent) recent.erase(recent.begin());
    }
    p.last = std::move(record);
  }
  if (!recent.empty()) {
    double sum = 0;
    for (double t : recent) sum += t;
    p.step_seconds = sum / recent.size();
  }
  if (per_epoch.size() > 1) {
    long longest = 0;
    for (auto it = per_epoch.begin(); std::next(it) != per_epoch.end(); ++it) longest = std::max(longest, it->second);
    p.steps_per_epoch = static_cast<double>(longest);
  }
  return p;
}

double number(const json& record, const char* key) {
  return record.contains(key) && record[key].is_number() ? record[key].get<double>() : NAN;
}

// The run's resolved config.json (written by pretrain), an empty object when absent.
json read_run_config(const fs::path& run_dir) {
  std::ifstream in(run_dir / "config.json");
  const json config = in ? json::parse(in, nullptr, false) : json();
  return config.is_object() ? config : json::object();
}

// Total optimizer steps of the run: epochs x steps per epoch once an epoch has finished,
// capped by train.max_steps of the resolved config when that is set.
double total_steps(const Progress& progress, const json& config) {
  double total = NAN;
  if (!std::isnan(progress.steps_per_epoch) && config.contains("optim"))
    total = progress.steps_per_epoch * config["optim"].value("epochs", 0);
  if (config.contains("train") && config["train"].value("max_steps", 0) > 0) {
    const double max_steps = config["train"]["max_steps"].get<double>();
    total = std::isnan(total) ? max_steps : std::min(total, max_steps);
  }
  return total;
}

void print_progress(const fs::path& run_dir, const json& config) {
  const Progress progress = read_progress(run_dir / "metrics.jsonl");
  const json& record = progress.last;
  if (record.is_null()) {
    std::cout << "progress: no metrics yet (" << (run_dir / "metrics.jsonl").string() << ")\n";
    return;
  }
  const double step = number(record, "step");
  std::ostringstream os;
  os << "progress: step " << (std::isnan(step) ? std::string("?") : std::to_string(static_cast<long>(step)));
  const double total = total_steps(progress, config);
  if (!std::isnan(total)) os << "/" << static_cast<long>(total);
  const double epoch = number(record, "epoch");
  if (!std::isnan(epoch)) {  // 0-based in the records, shown as the progress bar counts
    os << ", epoch " << static_cast<long>(epoch) + 1;
    if (config.contains("optim") && config["optim"].contains("epochs")) os << "/" << config["optim"]["epochs"].dump();
  }
  const double loss = number(record, "loss");
  if (!std::isnan(loss)) os << ", loss " << loss;
  const double images_per_s = number(record, "images_per_s");
  if (!std::isnan(images_per_s)) os << ", " << std::lround(images_per_s * 10) / 10.0 << " images/s";
  if (!std::isnan(total) && !std::isnan(step) && !std::isnan(progress.step_seconds) && total > step)
    os << ", ETA " << duration((total - step) * progress.step_seconds);
  std::cout << os.str() << "\n";
}

struct EnergySoFar {
  double joules = 0;
  std::map<std::string, double> host_joules;  // per node (energy.csv's host column)
  std::set<std::string> labels;  // measured / estimated
  int files = 0;
};

// Adds one energy.csv (time,rank,host,device,domain,joules,watts,label). Its joules are
// cumulative per (rank, host, device, domain) within one run of a stage, and every run (a
// requeued job, a resumed run) starts a new count. The file marks no such start, but within
// a run the sampler writes every 1/sample_hz s: a drop in joules or a silence of
// `restart_gap_s` starts a new segment, and the previous segment's last value is kept.
void add_energy_csv(const fs::path& file, double restart_gap_s, EnergySoFar& sum) {
  std::ifstream in(file);
  std::string header;
  if (!std::getline(in, header)) return;
  auto split = [](const std::string& line) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
    return fields;
  };
  const std::vector<std::string> columns = split(header);
  auto column = [&](const std::string& name) {
    for (size_t i = 0; i < columns.size(); ++i)
      if (columns[i] == name) return static_cast<int>(i);
    return -1;
  };
  const int c_time = column("time"), c_joules = column("joules"), c_label = column("label");
  if (c_joules < 0) return;
  struct Series {
    double carried = 0, last = 0, last_time = NAN;
    std::string host;
  };
  std::map<std::string, Series> series;
  for (std::string line; std::getline(in, line);) {
    const std::vector<std::string> f = split(line);
    if (f.size() < columns.size()) continue;  // a torn last line
    char* end = nullptr;
    const double joules = std::strtod(f[c_joules].c_str(), &end);
    if (end == f[c_joules].c_str()) continue;
    const double time = c_time >= 0 ? std::strtod(f[c_time].c_str(), nullptr) : NAN;
    std::string key;
    for (const char* name : {"rank", "host", "device", "domain"})
      if (column(name) >= 0) key += f[column(name)] + "|";
    Series& s = series[key];
    if (column("host") >= 0) s.host = f[column("host")];
    if (joules < s.last || time - s.last_time > restart_gap_s) s.carried += s.last;
    s.last = joules;
    s.last_time = time;
    if (c_label >= 0) sum.labels.insert(f[c_label]);
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
  std::map<std::string, json> nodes;
  if (fs::is_directory(run_dir / "nodes"))
    for (const auto& entry : fs::directory_iterator(run_dir / "nodes")) {
      if (entry.path().extension() != ".json") continue;
      std::ifstream in(entry.path());
      json record = json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object() || !record.contains("host") || !record["host"].is_string()) continue;
      const std::string host = record["host"].get<std::string>();
      nodes[host] = std::move(record);
    }
  for (const auto& [host, joules] : energy.host_joules) nodes.emplace(host, json::object());
  if (nodes.empty()) return;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::cout << "nodes: " << nodes.size() << "\n";
  for (const auto& [host, record] : nodes) {
    std::ostringstream os;
    os << "  node " << host << ":";
    if (record.contains("ranks")) os << " ranks " << record["ranks"].get<std::string>() << ",";
    if (record.contains("step")) os << " step " << record["step"].dump() << ",";
    if (record.contains("time") && record["time"].is_number())
      os << " last report " << duration(std::max(0.0, now - record["time"].get<double>())) << " ago,";
    const auto joules = energy.host_joules.find(host);
    if (joules != energy.host_joules.end()) os << " energy " << std::lround(joules->second) << " J";
    else os << " energy unknown";
    std::cout << os.str() << "\n";
  }
}

// Every energy.csv under the run folder: pretrain's, and one per task of an embed sweep.
void print_energy(const fs::path& run_dir, const json& config) {
  double sample_hz = 1.0;
  if (config.contains("energy") && config["energy"].is_object() && config["energy"].value("sample_hz", 0.0) > 0)
    sample_hz = config["energy"]["sample_hz"].get<double>();
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

void run_status(const std::string& run_dir_arg) {
  const fs::path run_dir = fs::absolute(run_dir_arg).lexically_normal();
  if (!fs::is_directory(run_dir)) throw std::runtime_error(run_dir.string() + ": not a run folder (no such directory)");
  std::cout << "run: " << run_dir.string() << "\n";
  const auto ids = slurm::recorded_job_ids(run_dir.string());
  if (ids.empty()) {
    std::cout << "job: none recorded (" << (run_dir / "slurm" / "job_ids").string() << ")\n";
  } else if (!slurm::on_path("squeue") && !slurm::on_path("scontrol") && !slurm::on_path("sacct")) {
    std::cout << "job " << ids.back() << ": state unknown (no squeue, scontrol or sacct on PATH)\n";
  } else {
    print_job(ids.back(), true);
    for (size_t i = ids.size() - 1; i-- > 0;) print_job(ids[i], false);
  }
  const json config = read_run_config(run_dir);
  print_progress(run_dir, config);
  print_energy(run_dir, config);
}

}  // namespace

void setup_status(CLI::App& sub) {
  auto run_dir = std::make_shared<std::string>();
  sub.add_option("run_dir", *run_dir, "Run folder")->required();
  sub.callback([run_dir] { run_status(*run_dir); });
}

}  // namespace gf::launcher
