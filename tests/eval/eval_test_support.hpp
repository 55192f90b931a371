#pragma once
// Shared by the eval tests: a scratch folder per test (tests may run side by side), Debian's
// python with the reference scripts of this folder, and JSON files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace gf::eval::testing {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// A fresh folder under the build tree, named after a test (SUITE.TEST).
inline std::filesystem::path fresh_scratch_dir(const ::testing::TestInfo& test) {
  const auto dir =
      std::filesystem::current_path() / "scratch" / (std::string(test.test_suite_name()) + "." + test.name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The running test's folder.
inline std::filesystem::path scratch_dir() {
  return fresh_scratch_dir(*::testing::UnitTest::GetInstance()->current_test_info());
}

// The folder of a suite's shared files, for SetUpTestSuite: named after the first of its tests
// that runs. ctest runs each test in a process of its own, side by side under -j, so each gets
// its own folder; a run of the whole binary has one for the suite.
inline std::filesystem::path suite_scratch_dir() {
  const ::testing::TestSuite& suite = *::testing::UnitTest::GetInstance()->current_test_suite();
  for (int i = 0; i < suite.total_test_count(); ++i)
    if (suite.GetTestInfo(i)->should_run()) return fresh_scratch_dir(*suite.GetTestInfo(i));
  throw std::runtime_error(std::string(suite.name()) + ": no test to run");  // gtest sets up only suites that run
}

inline void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump();
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": missing");
  return nlohmann::json::parse(in);
}

// Runs tests/eval/<script> with the venv's python (GF_PYTHON); returns the exit status.
inline int run_python(const std::string& script, const std::string& args) {
  const std::string python = env_or("GF_PYTHON", "/usr/bin/python3");
  const std::string source = env_or("GF_SOURCE_DIR", GF_EVAL_TEST_SOURCE_DIR "/../..");
  const std::string command = python + " " + source + "/tests/eval/" + script + " " + args;
  return std::system(command.c_str());
}

}  // namespace gf::eval::testing
