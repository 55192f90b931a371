#pragma once
// Runs a shell command for a test: its exit status, merged stdout+stderr and wall time.
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

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

// The mpirun of the build (ctest sets GF_MPIEXEC), run as root and oversubscribed as CI needs.
inline std::string mpirun(int ranks) {
  const char* exec = std::getenv("GF_MPIEXEC");
  return std::string(exec && *exec ? exec : "mpirun") + " --allow-run-as-root --oversubscribe --bind-to none -n " +
         std::to_string(ranks) + " ";
}

}  // namespace gf::test
