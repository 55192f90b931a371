// `greenfound launch -n N [--threads T] [--hosts h1:2,h2:2 | --hostfile F] -- <subcommand> [args]`:
// starts N ranks of this very binary through the cluster's own launcher — `srun` inside a
// SLURM allocation, else `mpirun` on this node or on the hosts given (started there through
// Open MPI's rsh agent: ssh, or --rsh-agent) — sets the thread count of every rank, forwards
// SIGINT, SIGTERM and SIGUSR1 to it, and exits with its status (mpirun and srun end the job
// when any rank fails, and report the worst status).
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "launcher/child_process.hpp"
#include "launcher/commands.hpp"
#include "launcher/job_failure.hpp"

namespace gf::launcher {
namespace {

struct LaunchFlags {
  int ranks = 0;    // 0: 1 on this node, every slot of the hosts given
  int threads = 0;  // 0: the CPUs this process may use, shared out over the ranks of one host
  std::string hosts;      // Open MPI's --host list: "h1:2,h2:2" (host:slots)
  std::string hostfile;   // Open MPI's hostfile: "h1 slots=2" per line
  std::string rsh_agent;  // how mpirun reaches the hosts ("" = Open MPI's default, ssh)
  std::string network;    // interface or CIDR carrying MPI and Open MPI's own traffic
  std::vector<std::string> command;
};

// Slots per host of a --host list or a hostfile, in order; a host without a count has 1 slot.
std::vector<std::pair<std::string, int>> parse_hosts(const LaunchFlags& flags) {
  std::vector<std::pair<std::string, int>> hosts;
  auto add = [&](const std::string& name, const std::string& slots, const std::string& where) {
    int n = 1;
    if (!slots.empty()) {
      if (slots.find_first_not_of("0123456789") != std::string::npos || std::stoi(slots) < 1)
        throw std::runtime_error(where + ": slots of " + name + ": found \"" + slots + "\", expected a positive number");
      n = std::stoi(slots);
    }
    hosts.emplace_back(name, n);
  };
  if (!flags.hosts.empty()) {
    std::stringstream list(flags.hosts);
    for (std::string item; std::getline(list, item, ',');) {
      if (item.empty()) throw std::runtime_error("launch --hosts: found an empty entry in \"" + flags.hosts + "\", expected host:slots,...");
      const auto colon = item.find(':');
      add(item.substr(0, colon), colon == std::string::npos ? "" : item.substr(colon + 1), "launch --hosts");
    }
  } else if (!flags.hostfile.empty()) {
    std::ifstream in(flags.hostfile);
    if (!in) throw std::runtime_error(flags.hostfile + ": cannot open the hostfile");
    for (std::string line; std::getline(in, line);) {
      line = line.substr(0, line.find('#'));
      std::stringstream words(line);
      std::string name, word, slots;
      if (!(words >> name)) continue;
      while (words >> word)
        if (word.rfind("slots=", 0) == 0) slots = word.substr(6);
      add(name, slots, flags.hostfile);
    }
    if (hosts.empty()) throw std::runtime_error(flags.hostfile + ": found no host, expected lines such as \"node1 slots=2\"");
  }
  return hosts;
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

std::vector<std::string> launcher_command(const LaunchFlags& flags, int ranks, int threads) {
  const std::string exe = self_executable();
  std::vector<std::string> argv;
  if (std::getenv("SLURM_JOB_ID")) {
    // Inside an allocation: srun places the ranks on the allocated nodes and, with
    // --kill-on-bad-exit, ends the step when one of them fails or dies.
    argv = {"srun", "--ntasks=" + std::to_string(ranks), "--cpus-per-task=" + std::to_string(threads),
            "--kill-on-bad-exit=1", "--export=ALL"};
  } else {
    const char* mpiexec = std::getenv("GF_MPIEXEC");
    argv = {mpiexec && *mpiexec ? mpiexec : "mpirun", "-n", std::to_string(ranks), "--bind-to", "none"};
    if (geteuid() == 0) argv.push_back("--allow-run-as-root");
    if (!flags.hosts.empty()) argv.insert(argv.end(), {"--host", flags.hosts});
    if (!flags.hostfile.empty()) argv.insert(argv.end(), {"--hostfile", flags.hostfile});
    if (!flags.rsh_agent.empty()) argv.insert(argv.end(), {"--mca", "plm_rsh_agent", flags.rsh_agent});
    if (!flags.hosts.empty() || !flags.hostfile.empty()) {
      // A host that goes silent (cable cut, power lost) is noticed by mpirun and by that
      // host's own daemon within ~8 s (TCP keepalive: 5 s idle, then 3 probes 1 s apart),
      // not ~8 minutes, so the job ends and nothing is left running on either side. Ending
      // a job, Open MPI sends SIGCONT, SIGTERM and SIGKILL, each odls_base_sigkill_timeout
      // after the previous: 2 s (not 1) gives ranks time to say which collective they were in.
      argv.insert(argv.end(), {"--mca", "oob_tcp_keepalive_time", "5", "--mca", "oob_tcp_keepalive_intvl", "1",
                               "--mca", "oob_tcp_keepalive_probes", "3", "--mca", "odls_base_sigkill_timeout", "2"});
    }
    if (!flags.network.empty()) {
      // Both the ranks' TCP transport and Open MPI's own daemon traffic; shared memory stays
      // between ranks of one host.
      argv.insert(argv.end(), {"--mca", "btl_tcp_if_include", flags.network, "--mca", "oob_tcp_if_include", flags.network});
    }
    if (flags.hosts.empty() && flags.hostfile.empty() && ranks > available_cores()) argv.push_back("--oversubscribe");
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
  if (!flags.hosts.empty() && !flags.hostfile.empty())
    throw std::runtime_error("launch: found both --hosts and --hostfile, expected one of them");
  if (std::getenv("SLURM_JOB_ID") && (!flags.hosts.empty() || !flags.hostfile.empty()))
    throw std::runtime_error("launch: found --hosts/--hostfile inside a SLURM allocation, expected none (srun places the ranks on the allocated nodes)");
  const auto hosts = parse_hosts(flags);
  int slots = 0, busiest = 0;
  for (const auto& [name, n] : hosts) {
    slots += n;
    busiest = std::max(busiest, n);
  }
  const int ranks = flags.ranks > 0 ? flags.ranks : (hosts.empty() ? 1 : slots);
  // Hosts are taken to be alike: every host shares its CPUs among at most `busiest` ranks.
  const int ranks_per_host = hosts.empty() ? ranks : std::min(ranks, busiest);
  // Inside an allocation each rank gets the CPUs SLURM gave each task (a step asking for more
  // is refused); outside, the CPUs here are shared among this host's ranks.
  const char* slurm_cpus = std::getenv("SLURM_JOB_ID") ? std::getenv("SLURM_CPUS_PER_TASK") : nullptr;
  const int threads = flags.threads > 0                         ? flags.threads
                      : slurm_cpus && std::atoi(slurm_cpus) > 0 ? std::atoi(slurm_cpus)
                                                                : std::max(1, available_cpus() / ranks_per_host);
  // Every rank inherits these (mpirun -x passes them to other nodes, srun --export=ALL).
  const std::string t = std::to_string(threads);
  setenv("OMP_NUM_THREADS", t.c_str(), 1);
  setenv("OPENBLAS_NUM_THREADS", t.c_str(), 1);
  setenv("MKL_NUM_THREADS", t.c_str(), 1);
  const std::vector<std::string> argv = launcher_command(flags, ranks, threads);
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  std::cerr << "greenfound launch: " << line << std::endl;
  JobFailure failure(hosts);
  const int status = run_and_wait(argv, [&failure](const std::string& line) { failure.add_line(line); });
  if (status != 0) {
    const std::string why = failure.summary();
    if (!why.empty()) std::cerr << "greenfound launch: error: " << why << std::endl;
    throw CLI::RuntimeError(status);
  }
}

}  // namespace

void setup_launch(CLI::App& sub) {
  auto flags = std::make_shared<LaunchFlags>();
  sub.add_option("-n,--ranks", flags->ranks, "Number of ranks (default 1, or every slot of --hosts/--hostfile)")->check(CLI::PositiveNumber);
  sub.add_option("--threads", flags->threads, "Torch/BLAS threads per rank (default: SLURM_CPUS_PER_TASK inside an allocation, else CPUs / ranks); a config's train.threads > 0 wins")
      ->check(CLI::PositiveNumber);
  sub.add_option("--hosts", flags->hosts, "Hosts and ranks per host, host:slots,... (Open MPI's --host), e.g. node1:2,node2:2");
  sub.add_option("--hostfile", flags->hostfile, "Open MPI hostfile (\"node1 slots=2\" per line)")->check(CLI::ExistingFile);
  sub.add_option("--rsh-agent", flags->rsh_agent,
                 "Command that runs a command on a host (Open MPI's plm_rsh_agent; default ssh), e.g. \"scripts/cluster-local.sh exec\"");
  sub.add_option("--network", flags->network, "Interface or CIDR for MPI traffic between hosts (e.g. ib0, 10.213.0.0/24)");
  sub.add_option("command", flags->command, "The subcommand each rank runs, after --: -- pretrain --config c.json")
      ->required();
  sub.footer("Under SLURM (SLURM_JOB_ID set) the ranks are started by srun, else by mpirun: on this node, or on the hosts given.");
  sub.callback([flags] { run_launch(*flags); });
}

}  // namespace gf::launcher
