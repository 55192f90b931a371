// `greenfound cancel RUN_DIR`: cancels the run's jobs that SLURM still runs or holds.
#include <filesystem>
#include <iostream>
#include <memory>

#include "launcher/commands.hpp"
#include "slurm/scheduler.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;

bool is_active(const std::string& state) {
  for (const char* s : {"PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "CONFIGURING", "COMPLETING", "RESIZING", "REQUEUE_HOLD",
                        "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED"})
    if (state == s) return true;
  return false;
}

void run_cancel(const std::string& run_dir_arg) {
  const std::string run_dir = fs::absolute(run_dir_arg).lexically_normal().string();
  const auto ids = slurm::recorded_job_ids(run_dir);
  if (ids.empty()) throw std::runtime_error(run_dir + "/slurm/job_ids: no job recorded, expected a folder written by `greenfound submit`");
  int cancelled = 0;
  for (const auto& id : ids) {
    const auto state = slurm::query_job(id);
    if (!is_active(state.state)) continue;
    slurm::cancel(id);
    std::cout << "cancelled job " << id << " (was " << state.state << ")\n";
    ++cancelled;
  }
  if (cancelled == 0) std::cout << "nothing to cancel: no job of " << run_dir << " is pending or running\n";
}

}  // namespace

void setup_cancel(CLI::App& sub) {
  auto run_dir = std::make_shared<std::string>();
  sub.add_option("run_dir", *run_dir, "Run folder")->required();
  sub.callback([run_dir] { run_cancel(*run_dir); });
}

}  // namespace gf::launcher
