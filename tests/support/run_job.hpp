#pragma once
// Runs a shell command for a test: its exit status, merged stdout+stderr and wall time.
// Shared by every test folder (include "tests/support/run_job.hpp"), for the greenfound binary,
// mpirun, python3 and the SLURM tools alike.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/environment.hpp"

namespace gf::test {

struct JobResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string output;
  double seconds = 0;
};

inline JobResult run_job(const std::string& command) {
  JobResult result;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

// `greenfound <args>` through the built binary (GF_BIN).
inline JobResult greenfound(const std::string& args) { return run_job(greenfound_bin() + " " + args); }

// The mpirun of the build (ctest sets GF_MPIEXEC), run as root and oversubscribed as CI needs.
inline std::string mpirun(int ranks) {
  return mpiexec() + " --allow-run-as-root --oversubscribe --bind-to none -n " + std::to_string(ranks) + " ";
}

// A job in the background (sh -c command > log 2>&1), for tests that act while it runs.
class BackgroundJob {
 public:
  BackgroundJob(const std::string& command, std::string log) : log_(std::move(log)) {
    start_ = std::chrono::steady_clock::now();
    pid_ = fork();
    if (pid_ == 0) {
      const std::string line = command + " > '" + log_ + "' 2>&1";
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~BackgroundJob() {
    if (pid_ > 0 && !finished_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Waits up to `seconds`; false when the job still runs then.
  bool wait(double seconds, JobResult& result) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    for (;;) {
      const pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    finished_ = true;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    result.output = text.str();
    return true;
  }
  pid_t pid() const { return pid_; }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace gf::test
