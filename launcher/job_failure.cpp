#include "launcher/job_failure.hpp"

#include <regex>

namespace gf::launcher {

JobFailure::JobFailure(std::vector<std::pair<std::string, int>> host_slots) : host_slots_(std::move(host_slots)) {}

std::string JobFailure::ranks_of(const std::string& host) const {
  int first = 0;
  for (const auto& [name, slots] : host_slots_) {
    if (name == host) return slots == 1 ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(first + slots - 1);
    first += slots;
  }
  return "";
}

void JobFailure::add_line(const std::string& line) {
  // Open MPI 4.1 and SLURM 22.05 wordings.
  static const std::regex kMpirunDied(R"(process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+) \(([^)]*)\))");
  static const std::regex kMpirunLost(R"(Remote daemon: \[\[\d+,\d+\],\d+\] on node (\S+))");
  static const std::regex kSrunTask(R"(srun: error: (\S+): tasks? ([0-9,-]+): (.+))");
  static const std::regex kSrunNode(R"(srun: error: Node failure on (\S+))");
  static const std::regex kWatchdog(
      R"(dist watchdog: (\S+) on rank (\d+) of \d+ \(host (\S+)\) (?:did not finish within|still waiting after) ([0-9.]+) s.*\(step (\S+)\))");
  std::smatch m;
  if (failed_host_.empty() && std::regex_search(line, m, kMpirunDied)) {
    failed_host_ = m[2];
    failed_ranks_ = ranks_of(failed_host_).empty() ? m[1].str() : ranks_of(failed_host_);
    what_ = "rank " + m[1].str() + " exited on signal " + m[3].str() + ", " + m[4].str();
  } else if (failed_host_.empty() && std::regex_search(line, m, kMpirunLost)) {
    failed_host_ = m[1];
    failed_ranks_ = ranks_of(failed_host_);
    what_ = "mpirun lost contact with it";
  } else if (failed_host_.empty() && std::regex_search(line, m, kSrunNode)) {
    failed_host_ = m[1];
    what_ = "node failure";
  } else if (failed_host_.empty() && std::regex_search(line, m, kSrunTask)) {
    failed_host_ = m[1];
    failed_ranks_ = m[2];
    what_ = "rank(s) " + m[2].str() + ": " + m[3].str();
  } else if (std::regex_search(line, m, kWatchdog)) {
    stalls_.push_back({m[1], m[5], m[3], m[2], m[4]});
  }
}

std::string JobFailure::summary() const {
  if (failed_host_.empty() && stalls_.empty()) return "";
  // The first report from a host other than the failed one says best what the job waited on.
  const Stall* stall = stalls_.empty() ? nullptr : &stalls_.front();
  for (const auto& s : stalls_)
    if (s.host != failed_host_) {
      stall = &s;
      break;
    }
  std::string out;
  if (!failed_host_.empty()) {
    const bool several = failed_ranks_.find_first_of(",-") != std::string::npos;
    out = "host " + failed_host_ + (failed_ranks_.empty() ? "" : (several ? " (ranks " : " (rank ") + failed_ranks_ + ")") +
          " failed: " + what_;
  }
  if (stall) {
    out += (out.empty() ? "" : "; ") + std::string("the job stopped in ") + stall->operation + " at step " + stall->step +
           " (rank " + stall->rank + " on host " + stall->host + " waited " + stall->waited + " s)";
    if (failed_host_.empty()) out += ": a peer rank died or hangs";
  }
  return out;
}

}  // namespace gf::launcher
