#include "slurm/scheduler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/text.hpp"
#include "slurm/process.hpp"

namespace gf::slurm {
namespace fs = std::filesystem;

namespace {

ProcessResult run_tool(const std::vector<std::string>& argv) {
  if (!on_path(argv[0])) return ProcessResult{127, "", argv[0] + ": not found on PATH"};
  return run_process(argv);
}

// "5_0" -> task 0 of array 5; plain ids have no '_'.
bool is_task_of(const std::string& id, const std::string& array_id) { return id.rfind(array_id + "_", 0) == 0; }

// Folds array tasks into one summary state: anything still running or waiting wins, then any
// failure, else the common final state.
JobState summarise(const std::string& job_id, std::vector<JobState> rows, const std::string& source) {
  if (rows.size() == 1 && rows[0].job_id == job_id) {
    rows[0].source = source;
    return rows[0];
  }
  JobState out;
  out.job_id = job_id;
  out.source = source;
  static const char* kOrder[] = {"RUNNING", "COMPLETING", "CONFIGURING", "PENDING", "REQUEUED", "SUSPENDED",
                                 "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT", "PREEMPTED", "CANCELLED", "COMPLETED"};
  out.state = "UNKNOWN";
  for (const char* state : kOrder) {
    bool any = false;
    for (const auto& r : rows) any = any || r.state.rfind(state, 0) == 0;
    if (any) {
      out.state = state;
      break;
    }
  }
  out.reason = "None";
  for (const auto& r : rows) out.restarts += r.restarts;
  // In task order ("5_2" before "5_10"); squeue lists them newest first.
  auto task_index = [](const JobState& s) {
    const auto us = s.job_id.find('_');
    return us == std::string::npos ? -1L : std::atol(s.job_id.c_str() + us + 1);
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const JobState& a, const JobState& b) { return task_index(a) < task_index(b); });
  out.tasks = std::move(rows);
  return out;
}

std::vector<JobState> from_squeue(const std::string& job_id) {
  const auto r = run_tool({"squeue", "-h", "-r", "--states=all", "-j", job_id, "-O",
                           "JobArrayID:|,State:|,Reason:|,RestartCnt:|"});
  std::vector<JobState> rows;
  if (r.exit_code != 0) return rows;
  for (const auto& line : base::split(r.out, '\n')) {
    const auto f = base::split(line, '|');
    if (f.size() < 4) continue;
    JobState s;
    s.job_id = base::trim(f[0]);
    s.state = base::trim(f[1]);
    s.reason = base::trim(f[2]);
    s.restarts = std::atoi(base::trim(f[3]).c_str());
    if (s.job_id == job_id || is_task_of(s.job_id, job_id)) rows.push_back(s);
  }
  return rows;
}

std::vector<JobState> from_scontrol(const std::string& job_id) {
  const auto r = run_tool({"scontrol", "-o", "show", "job", job_id});
  std::vector<JobState> rows;
  if (r.exit_code != 0) return rows;
  static const std::regex kField(R"((\w+)=(\S*))");
  for (const auto& line : base::split(r.out, '\n')) {
    std::map<std::string, std::string> kv;
    for (std::sregex_iterator it(line.begin(), line.end(), kField), end; it != end; ++it) kv[(*it)[1]] = (*it)[2];
    if (!kv.count("JobState")) continue;
    JobState s;
    s.job_id = kv.count("ArrayTaskId") ? kv["ArrayJobId"] + "_" + kv["ArrayTaskId"] : kv["JobId"];
    s.state = kv["JobState"];
    s.reason = kv["Reason"];
    s.exit_code = kv["ExitCode"];
    s.restarts = std::atoi(kv["Restarts"].c_str());
    if (kv["NodeList"] != "(null)") s.node_list = kv["NodeList"];
    rows.push_back(s);
  }
  return rows;
}

// sacct with accounting storage; without it, `sacct -c` reads the job-completion log.
std::vector<JobState> from_sacct(const std::string& job_id) {
  std::vector<JobState> rows;
  const auto r = run_tool({"sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State,ExitCode"});
  if (r.exit_code == 0 && r.out.find("accounting storage is disabled") == std::string::npos) {
    for (const auto& line : base::split(r.out, '\n')) {
      const auto f = base::split(line, '|');
      if (f.size() < 3) continue;
      JobState s;
      s.job_id = f[0];
      s.state = base::split(f[1], ' ').front();  // "CANCELLED by 0"
      s.reason = "None";
      s.exit_code = f[2];
      rows.push_back(s);
    }
    if (!rows.empty()) return rows;
  }
  const auto c = run_tool({"sacct", "-c", "-n", "-P", "-j", job_id});
  if (c.exit_code != 0) return rows;
  for (const auto& line : base::split(c.out, '\n')) {
    const auto f = base::split(line, '|');  // JobID|UID|JobName|Partition|NNodes|NodeList|State|End
    if (f.size() < 7 || f[0] != job_id) continue;
    JobState s;
    s.job_id = f[0];
    s.state = f[6];
    s.reason = "None";
    rows.push_back(s);  // a requeued job has one line per run: the last one is current
  }
  if (rows.size() > 1) rows.erase(rows.begin(), rows.end() - 1);
  return rows;
}

}  // namespace

bool on_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  for (const auto& dir : base::split(path, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / tool;
    if (::access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate)) return true;
  }
  return false;
}

std::string write_run_file(const std::string& run_dir, const std::string& name, const std::string& text, int mode) {
  const fs::path dir = fs::path(run_dir) / "slurm";
  fs::create_directories(dir);
  const fs::path path = dir / name;
  base::write_file_atomic(path.string(), text, static_cast<mode_t>(mode));
  return path.string();
}

std::string write_script(const std::string& run_dir, const std::string& script) {
  return write_run_file(run_dir, "job.sbatch", script, 0755);
}

std::string submit(const std::string& script_path, const std::string& run_dir) {
  if (!on_path("sbatch"))
    throw std::runtime_error("sbatch: not found on PATH; submitting needs a SLURM client (--dry-run only writes " +
                             script_path + ")");
  const auto r = run_process({"sbatch", "--parsable", script_path});
  if (r.exit_code != 0)
    throw std::runtime_error("sbatch rejected " + script_path + " (exit " + std::to_string(r.exit_code) +
                             "): " + base::trim(r.err.empty() ? r.out : r.err));
  // --parsable prints "ID" or "ID;CLUSTER".
  const std::string job_id = base::trim(base::split(base::trim(r.out), ';').front());
  if (job_id.empty() || job_id.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("sbatch --parsable " + script_path + ": printed \"" + base::trim(r.out) + "\", expected a job id");

  const fs::path ids = fs::path(run_dir) / "slurm" / "job_ids";
  fs::create_directories(ids.parent_path());
  std::string text;
  for (const auto& id : recorded_job_ids(run_dir)) text += id + "\n";
  base::write_file_atomic(ids.string(), text + job_id + "\n");
  return job_id;
}

std::vector<std::string> recorded_job_ids(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / "slurm" / "job_ids");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line))
    if (!base::trim(line).empty()) ids.push_back(base::trim(line));
  return ids;
}

JobState query_job(const std::string& job_id) {
  if (auto rows = from_squeue(job_id); !rows.empty()) {
    // squeue has no exit code: take it from scontrol when the job is still in memory.
    auto scontrol_rows = from_scontrol(job_id);
    for (auto& row : rows)
      for (const auto& s : scontrol_rows)
        if (s.job_id == row.job_id) {
          row.exit_code = s.exit_code;
          row.node_list = s.node_list;
        }
    return summarise(job_id, rows, "squeue");
  }
  if (auto rows = from_scontrol(job_id); !rows.empty()) return summarise(job_id, rows, "scontrol");
  if (auto rows = from_sacct(job_id); !rows.empty()) return summarise(job_id, rows, "sacct");
  JobState unknown;
  unknown.job_id = job_id;
  unknown.state = "UNKNOWN";
  return unknown;
}

std::vector<std::pair<std::string, std::string>> unavailable_nodes(const std::string& node_list) {
  std::vector<std::pair<std::string, std::string>> out;
  if (node_list.empty()) return out;
  const auto r = run_tool({"sinfo", "-R", "-h", "-n", node_list, "-o", "%N|%E"});
  if (r.exit_code != 0) return out;
  for (const auto& line : base::split(r.out, '\n')) {
    const auto f = base::split(line, '|');
    if (f.size() >= 2) out.emplace_back(base::trim(f[0]), base::trim(f[1]));
  }
  return out;
}

void cancel(const std::string& job_id) {
  const auto r = run_tool({"scancel", job_id});
  if (r.exit_code != 0) throw std::runtime_error("scancel " + job_id + " failed: " + base::trim(r.err + r.out));
}

void requeue(const std::string& job_id) {
  const auto r = run_tool({"scontrol", "requeue", job_id});
  if (r.exit_code != 0) throw std::runtime_error("scontrol requeue " + job_id + " failed: " + base::trim(r.err + r.out));
}

}  // namespace gf::slurm
