#include "slurm/scheduler.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "slurm/process.hpp"

namespace gf::slurm {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(s);
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

// temp name, fsync, rename: a reader never sees half a file.
void write_file_atomic(const fs::path& path, const std::string& text, mode_t mode) {
  const fs::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) throw std::runtime_error(tmp.string() + ": cannot create (" + std::strerror(errno) + ")");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw std::runtime_error(tmp.string() + ": write failed (" + why + ")");
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0 || ::close(fd) != 0)
    throw std::runtime_error(tmp.string() + ": cannot finish writing (" + std::strerror(errno) + ")");
  fs::rename(tmp, path);
}

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
  for (const auto& line : split(r.out, '\n')) {
    const auto f = split(line, '|');
    if (f.size() < 4) continue;
    JobState s;
    s.job_id = trim(f[0]);
    s.state = trim(f[1]);
    s.reason = trim(f[2]);
    s.restarts = std::atoi(trim(f[3]).c_str());
    if (s.job_id == job_id || is_task_of(s.job_id, job_id)) rows.push_back(s);
  }
  return rows;
}

std::vector<JobState> from_scontrol(const std::string& job_id) {
  const auto r = run_tool({"scontrol", "-o", "show", "job", job_id});
  std::vector<JobState> rows;
  if (r.exit_code != 0) return rows;
  static const std::regex kField(R"((\w+)=(\S*))");
  for (const auto& line : split(r.out, '\n')) {
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
    for (const auto& line : split(r.out, '\n')) {
      const auto f = split(line, '|');
      if (f.size() < 3) continue;
      JobState s;
      s.job_id = f[0];
      s.state = split(f[1], ' ').front();  // "CANCELLED by 0"
      s.reason = "None";
      s.exit_code = f[2];
      rows.push_back(s);
    }
    if (!rows.empty()) return rows;
  }
  const auto c = run_tool({"sacct", "-c", "-n", "-P", "-j", job_id});
  if (c.exit_code != 0) return rows;
  for (const auto& line : split(c.out, '\n')) {
    const auto f = split(line, '|');  // JobID|UID|JobName|Partition|NNodes|NodeList|State|End
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
  for (const auto& dir : split(path, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / tool;
    if (::access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate)) return true;
  }
  return false;
}

std::string write_run_file(const std::string& run_dir, const std::string& name, const std::string& text, int mode) {
  const fs::path dir = fs::path(run_dir) / "slurm";
  fs::create_directories(dir);
  const fs::path path = dir / name;
  write_file_atomic(path, text, static_cast<mode_t>(mode));
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
                             "): " + trim(r.err.empty() ? r.out : r.err));
  // --parsable prints "ID" or "ID;CLUSTER".
  const std::string job_id = trim(split(trim(r.out), ';').front());
  if (job_id.empty() || job_id.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("sbatch --parsable " + script_path + ": printed \"" + trim(r.out) + "\", expected a job id");

  const fs::path ids = fs::path(run_dir) / "slurm" / "job_ids";
  fs::create_directories(ids.parent_path());
  std::string text;
  for (const auto& id : recorded_job_ids(run_dir)) text += id + "\n";
  write_file_atomic(ids, text + job_id + "\n", 0644);
  return job_id;
}

std::vector<std::string> recorded_job_ids(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / "slurm" / "job_ids");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line))
    if (!trim(line).empty()) ids.push_back(trim(line));
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
  for (const auto& line : split(r.out, '\n')) {
    const auto f = split(line, '|');
    if (f.size() >= 2) out.emplace_back(trim(f[0]), trim(f[1]));
  }
  return out;
}

void cancel(const std::string& job_id) {
  const auto r = run_tool({"scancel", job_id});
  if (r.exit_code != 0) throw std::runtime_error("scancel " + job_id + " failed: " + trim(r.err + r.out));
}

void requeue(const std::string& job_id) {
  const auto r = run_tool({"scontrol", "requeue", job_id});
  if (r.exit_code != 0) throw std::runtime_error("scontrol requeue " + job_id + " failed: " + trim(r.err + r.out));
}

}  // namespace gf::slurm
