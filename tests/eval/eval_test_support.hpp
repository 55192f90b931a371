#pragma once
// Shared by the eval tests: a scratch folder per test (tests may run side by side), the venv's
// python with the reference scripts of this folder, and JSON files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/support/environment.hpp"
#include "tests/support/temp_dir.hpp"

namespace gf::eval::testing {

// A fresh folder under the build tree, named after a test (SUITE.TEST).
inline std::filesystem::path fresh_scratch_dir(const ::testing::TestInfo& test) {
  return gf::test::scratch_dir(std::string(test.test_suite_name()) + "." + test.name());
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
  const std::string command = gf::test::python() + " " + gf::test::test_script("eval", script) + " " + args;
  return std::system(command.c_str());
}

}  // namespace gf::eval::testing
