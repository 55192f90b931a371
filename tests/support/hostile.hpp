#pragma once
// The bad-input suite's harness (label `hostile`): run a command with a wall-clock bound and
// its peak memory measured, snapshot a folder's files before and compare after, and check a
// refusal is clean — a non-zero exit that is not a signal, one line naming what was wrong, no
// backtrace or library dump, within the time and memory bounds, nothing that existed changed
// and nothing half-written left.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace gf::test {

struct BoundedRun {
  int exit_code = -1;  // 128 + signal when a signal ended it
  bool timed_out = false;
  double seconds = 0;
  long peak_rss_mb = 0;
  std::string output;  // stdout and stderr
};

// `sh -c "exec COMMAND"`, killed (SIGKILL) after `max_seconds`; the peak RSS is the process's own
// (exec keeps the pid, wait4 reports it).
inline BoundedRun run_bounded(const std::string& command, double max_seconds, const std::filesystem::path& log) {
  BoundedRun run;
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string line = "exec " + command + " > '" + log.string() + "' 2>&1 < /dev/null";
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  for (;;) {
    if (wait4(pid, &status, WNOHANG, &usage) == pid) break;
    if (std::chrono::steady_clock::now() - start > std::chrono::duration<double>(max_seconds)) {
      run.timed_out = true;
      kill(pid, SIGKILL);
      wait4(pid, &status, 0, &usage);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.peak_rss_mb = usage.ru_maxrss / 1024;
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.exit_code = 128 + WTERMSIG(status);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  run.output = text.str();
  return run;
}

// Every regular file under `dir` with its bytes.
using Snapshot = std::map<std::string, std::string>;
inline Snapshot snapshot(const std::filesystem::path& dir) {
  Snapshot files;
  if (!std::filesystem::exists(dir)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      files[entry.path().string()] = bytes.str();
    }
  return files;
}

// What a clean refusal looks like (see the top of this file); `expected` is part of the one line.
inline void expect_clean_refusal(const BoundedRun& run, const std::string& expected, double max_seconds, long max_rss_mb,
                                 const Snapshot& before, const std::filesystem::path& dir) {
  EXPECT_FALSE(run.timed_out) << "still running after " << max_seconds << " s\n" << run.output;
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_LT(run.exit_code, 128) << "ended by signal " << run.exit_code - 128 << "\n" << run.output;
  EXPECT_LE(run.peak_rss_mb, max_rss_mb) << run.output;
  // One error line, the one naming what was wrong (CLI11's own refusals of a flag's value have
  // no "error:" prefix: then the line naming it is the one).
  std::vector<std::string> error_lines;
  bool named = false;
  std::stringstream text(run.output);
  for (std::string line; std::getline(text, line);) {
    if (line.find("error:") != std::string::npos) error_lines.push_back(line);
    named = named || line.find(expected) != std::string::npos;
  }
  EXPECT_LE(error_lines.size(), 1u) << run.output;
  if (error_lines.size() == 1) EXPECT_NE(error_lines[0].find(expected), std::string::npos) << "the error line does not say \"" << expected << "\":\n" << run.output;
  EXPECT_TRUE(named) << "no line says \"" << expected << "\":\n" << run.output;
  for (const char* noise : {"frame #", "HDF5-DIAG", "terminate called", "Exception raised from", "\x1b["})
    EXPECT_EQ(run.output.find(noise), std::string::npos) << "\"" << noise << "\" in:\n" << run.output;
  const Snapshot after = snapshot(dir);
  for (const auto& [path, bytes] : before) {
    const auto found = after.find(path);
    EXPECT_TRUE(found != after.end() && found->second == bytes) << path << " was changed or removed";
  }
  for (const auto& [path, bytes] : after)
    if (!before.count(path)) EXPECT_EQ(path.find(".tmp"), std::string::npos) << path << " left behind";
}

}  // namespace gf::test
