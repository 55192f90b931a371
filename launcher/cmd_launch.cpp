// `greenfound launch -n N [--threads T] -- <subcommand> [args]`: starts N ranks of this very
// binary through the cluster's own launcher — `srun` inside a SLURM allocation, else
// `mpirun` on this node — sets the thread count of every rank, forwards SIGINT, SIGTERM and
// SIGUSR1 to it, and exits with its status (mpirun and srun end the job when any rank fails,
// and report the worst status).
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "launcher/child_process.hpp"
#include "launcher/commands.hpp"

namespace gf::launcher {
namespace {

struct LaunchFlags {
  int ranks = 1;
  int threads = 0;  // 0: the CPUs this process may use, shared out over the ranks
  std::vector<std::string> command;
};

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

// Physical cores among the CPUs we may use: Open MPI's default slot count on this node.
int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return available_cpus();
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(topology + "physical_package_id"), core(topology + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) return available_cpus();
    cores.emplace(p, c);
  }
  return cores.empty() ? available_cpus() : static_cast<int>(cores.size());
}

std::vector<std::string> launcher_command(const LaunchFlags& flags, int threads) {
  const std::string exe = self_executable();
  std::vector<std::string> argv;
  if (std::getenv("SLURM_JOB_ID")) {
    // Inside an allocation: srun places the ranks on the allocated nodes and, with
    // --kill-on-bad-exit, ends the step when one of them fails or dies.
    argv = {"srun", "--ntasks=" + std::to_string(flags.ranks), "--cpus-per-task=" + std::to_string(threads),
            "--kill-on-bad-exit=1", "--export=ALL"};
  } else {
    const char* mpiexec = std::getenv("GF_MPIEXEC");
    argv = {mpiexec && *mpiexec ? mpiexec : "mpirun", "-n", std::to_string(flags.ranks), "--bind-to", "none"};
    if (geteuid() == 0) argv.push_back("--allow-run-as-root");
    if (flags.ranks > available_cores()) argv.push_back("--oversubscribe");
    for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
      argv.insert(argv.end(), {"-x", name});
    }
  }
  argv.push_back(exe);
  argv.insert(argv.end(), flags.command.begin(), flags.command.end());
  return argv;
}

void run_launch(const LaunchFlags& flags) {
  if (flags.command.empty()) throw std::runtime_error("launch: found no subcommand after --, expected e.g. `-- pretrain --config c.json`");
  if (flags.command.front() == "launch") throw std::runtime_error("launch: found `launch` as the subcommand, expected a stage such as pretrain, embed or probe");
  const int threads = flags.threads > 0 ? flags.threads : std::max(1, available_cpus() / flags.ranks);
  // Every rank inherits these (mpirun -x passes them to other nodes, srun --export=ALL).
  const std::string t = std::to_string(threads);
  setenv("OMP_NUM_THREADS", t.c_str(), 1);
  setenv("OPENBLAS_NUM_THREADS", t.c_str(), 1);
  setenv("MKL_NUM_THREADS", t.c_str(), 1);
  const std::vector<std::string> argv = launcher_command(flags, threads);
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  std::cerr << "greenfound launch: " << line << std::endl;
  const int status = run_and_wait(argv);
  if (status != 0) throw CLI::RuntimeError(status);
}

}  // namespace

void setup_launch(CLI::App& sub) {
  auto flags = std::make_shared<LaunchFlags>();
  sub.add_option("-n,--ranks", flags->ranks, "Number of ranks")->check(CLI::PositiveNumber);
  sub.add_option("--threads", flags->threads, "Torch/BLAS threads per rank (default: CPUs / ranks); a config's train.threads > 0 wins")
      ->check(CLI::PositiveNumber);
  sub.add_option("command", flags->command, "The subcommand each rank runs, after --: -- pretrain --config c.json")
      ->required();
  sub.footer("Under SLURM (SLURM_JOB_ID set) the ranks are started by srun, else by mpirun on this node.");
  sub.callback([flags] { run_launch(*flags); });
}

}  // namespace gf::launcher
