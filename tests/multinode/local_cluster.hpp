#pragma once
// The test cluster of scripts/cluster-local.sh around one test: hosts gf-h1..gf-hN in network
// namespaces on the bridge 10.213.0.0/24, with SLURM across them. Started by the
// constructor, stopped (nothing left behind) by the destructor. Tests work in a folder
// outside /tmp (each host has its own /tmp, like real nodes) that every host sees.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/environment.hpp"
#include "tests/support/run_job.hpp"

namespace gf::test {

class LocalCluster {
 public:
  static constexpr const char* kNetwork = "10.213.0.0/24";

  static std::string script() { return gf::test::source_dir() + "/scripts/cluster-local.sh"; }

  // Why hosts cannot be made on this machine, "" when they can (checked by making one).
  static std::string unavailable() {
    if (::geteuid() != 0) return "network namespaces need root (uid " + std::to_string(::geteuid()) + ")";
    for (const char* tool : {"/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/nsenter", "/usr/bin/unshare"})
      if (!std::filesystem::exists(tool)) return std::string(tool) + " is not installed";
    const std::string probe = "gf-probe-" + std::to_string(::getpid());
    const JobResult netns = run_job("ip netns add " + probe + " && ip netns del " + probe);
    if (netns.exit_code != 0) return "`ip netns add` failed: " + netns.output;
    const JobResult uts = run_job("unshare --uts --net --mount true");
    if (uts.exit_code != 0) return "`unshare --uts --net --mount` failed: " + uts.output;
    return "";
  }

  LocalCluster(int hosts, int gpus_per_host) : hosts_(hosts) {
    const JobResult start =
        run_job("bash " + script() + " start --hosts " + std::to_string(hosts) + " --gpus " + std::to_string(gpus_per_host));
    ok_ = start.exit_code == 0;
    log_ = start.output;
  }
  ~LocalCluster() { run_job("bash " + script() + " stop"); }
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& log() const { return log_; }
  static std::string host(int k) { return "gf-h" + std::to_string(k); }

  // `greenfound launch` across hosts ("gf-h1:2,gf-h2:2") of this cluster.
  static std::string launch(const std::string& bin, const std::string& hosts) {
    return bin + " launch --hosts " + hosts + " --rsh-agent '" + script() + " exec' --network " + kNetwork + " --threads 1 -- ";
  }

  // KEY=VALUE lines every process started on `host` gets (cluster-local.sh's environment file).
  static void set_host_environment(int k, const std::string& lines) {
    std::ofstream("/run/gf-cluster/hosts/" + host(k) + "/environment") << lines;
  }

  // Pids of the processes inside host k whose command line holds `needle`.
  static std::vector<pid_t> processes_on(int k, const std::string& needle) {
    std::vector<pid_t> out;
    std::stringstream pids(run_job("ip netns pids " + host(k)).output);
    for (pid_t pid; pids >> pid;) {
      std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(needle) != std::string::npos) out.push_back(pid);
    }
    return out;
  }

  // Pids of every process on this machine (any host) whose command line holds `needle`.
  static std::vector<pid_t> processes_anywhere(const std::string& needle) {
    std::vector<pid_t> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos || std::stol(name) == ::getpid()) continue;
      std::ifstream in(entry.path() / "cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::ifstream stat(entry.path() / "stat");
      std::string stat_line;
      std::getline(stat, stat_line);
      const bool zombie = stat_line.find(") Z ") != std::string::npos;
      if (!zombie && cmdline.find(needle) != std::string::npos) out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
  }

 private:
  int hosts_;
  bool ok_ = false;
  std::string log_;
};

// A folder for the test's files that every host sees (not /tmp): under the test's working
// directory in the build tree; removed unless the test failed.
class SharedFolder {
 public:
  explicit SharedFolder(const std::string& name)
      : path_(std::filesystem::current_path() / ("work-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  void keep() { keep_ = true; }
  ~SharedFolder() {
    if (!keep_) std::filesystem::remove_all(path_);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace gf::test
