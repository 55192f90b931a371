#pragma once
// Watching SLURM jobs and the runs they train in tests (link gf_slurm): poll a job's state,
// tell a final state, read a run's last logged step.
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "slurm/scheduler.hpp"
#include "tests/support/run_job.hpp"

namespace gf::test {

// Waits until `done` holds for the job's state, polling every 0.5 s; returns the last state.
inline slurm::JobState wait_for(const std::string& job, const std::function<bool(const slurm::JobState&)>& done,
                                double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  slurm::JobState state;
  while (true) {
    state = slurm::query_job(job);
    if (done(state) || std::chrono::steady_clock::now() > deadline) return state;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

inline bool finished(const slurm::JobState& s) {
  for (const char* final_state : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                                  "DEADLINE", "PREEMPTED"})
    if (s.state == final_state) return true;
  return false;
}

// Requeued and back in the queue, the old run fully ended (no longer COMPLETING): releasing
// it earlier can start the new run while slurmd still tears down the old one, and SLURM then
// fails it ("Job credential revoked").
inline bool requeued_and_pending(const slurm::JobState& s) { return (s.restarts >= 1 && s.state == "PENDING") || finished(s); }

// Releases a requeued job (SLURM holds it back ~2 minutes) once its old run is gone from the
// node: no slurmstepd of it is left (the local clusters' nodes share this machine's process
// table), and a new second has begun. slurmd revokes the old run's credential with a time in
// whole seconds and refuses a new start whose credential is not later ("Job credential
// revoked"). Returns scontrol's answer.
inline std::string release_requeued(const std::string& job) {
  std::string raw = run_job("scontrol show job " + job + " | grep -o 'JobId=[0-9]*' | head -1 | cut -d= -f2").output;
  raw.erase(raw.find_last_not_of(" \n") + 1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!raw.empty() && run_job("pgrep -f 'slurmstepd: \\[" + raw + "\\.'").exit_code == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const JobResult release = run_job("scontrol update jobid=" + job + " StartTime=now");
  return release.exit_code == 0 ? "" : release.output;
}

// The last step recorded in a run's metrics.jsonl (0 when none).
inline long last_step(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  long step = 0;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_object() && record.contains("step")) step = record["step"].get<long>();
  }
  return step;
}

}  // namespace gf::test
