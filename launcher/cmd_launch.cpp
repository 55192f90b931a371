// `greenfound launch -n N [--threads T] -- <subcommand> [args]`: starts N ranks of this very
// binary through the cluster's own launcher — `srun` inside a SLURM allocation, else
// `mpirun` on this node — sets the thread count of every rank, forwards SIGINT, SIGTERM and
// SIGUSR1 to it, and exits with its status (mpirun and srun end the job when any rank fails,
// and report the worst status).
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "launcher/commands.hpp"

namespace gf::launcher {
namespace {

struct LaunchFlags {
  int ranks = 1;
  int threads = 0;  // 0: the CPUs this process may use, shared out over the ranks
  std::vector<std::string> command;
};

std::atomic<pid_t> g_child{0};

// Signals sent by a process (kill, scancel) reach only us: pass them on. Those a terminal
// sends (Ctrl-C) already reached the child, which is in our process group.
void forward_signal(int signal, siginfo_t* info, void*) {
  const pid_t child = g_child.load();
  if (child > 0 && info->si_code != SI_KERNEL) kill(child, signal);
}

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

std::string self_executable() {
  std::vector<char> buffer(4096);
  const ssize_t n = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  if (n <= 0) throw std::runtime_error(std::string("launch: /proc/self/exe: ") + std::strerror(errno));
  return std::string(buffer.data(), static_cast<size_t>(n));
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

int run_and_wait(const std::vector<std::string>& argv) {
  struct sigaction action {};
  action.sa_sigaction = forward_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  const int forwarded[] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction previous[3];
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &action, &previous[i]);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error(std::string("launch: fork: ") + std::strerror(errno));
  if (child == 0) {
    for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &previous[i], nullptr);
    execvp(args[0], args.data());
    std::cerr << "greenfound: error: launch: cannot run " << argv[0] << ": " << std::strerror(errno) << std::endl;
    _exit(127);
  }
  g_child = child;
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("launch: waitpid: ") + std::strerror(errno));
  }
  g_child = 0;
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &previous[i], nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return EXIT_FAILURE;
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
