#pragma once
// Shared by the eval tests: a scratch folder per test, Debian's python with the reference
// scripts of this folder, and JSON files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace gf::eval::testing {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// A fresh folder under the build tree, named after the running test.
inline std::filesystem::path scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir = std::filesystem::current_path() / "scratch" /
                   (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump();
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": missing");
  return nlohmann::json::parse(in);
}

// Runs tests/eval/<script> with Debian's python3 (GF_PYTHON3); returns the exit status.
inline int run_python(const std::string& script, const std::string& args) {
  const std::string python = env_or("GF_PYTHON3", "/usr/bin/python3");
  const std::string source = env_or("GF_SOURCE_DIR", GF_EVAL_TEST_SOURCE_DIR "/../..");
  const std::string command = python + " " + source + "/tests/eval/" + script + " " + args;
  return std::system(command.c_str());
}

}  // namespace gf::eval::testing
