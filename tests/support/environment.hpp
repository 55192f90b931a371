#pragma once
// Where a test finds what ctest provides (gf_add_gtest in cmake/targets.cmake sets these):
// the fixtures, the source tree, the greenfound binary, mpirun and the venv's python. One
// way for every suite; a variable that is not set fails the test with how to run it.
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace gf::test {

inline std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0')
    throw std::runtime_error(std::string(name) + " is not set: run the test under ctest (cmake/targets.cmake sets it)");
  return value;
}

inline std::string fixtures_dir() { return required_env("GF_FIXTURES"); }  // tests/fixtures
inline std::string source_dir() { return required_env("GF_SOURCE_DIR"); }
inline std::string greenfound_bin() { return required_env("GF_BIN"); }
inline std::string mpiexec() { return required_env("GF_MPIEXEC"); }
// The venv's python with the pinned peers (torch, timm, scikit-learn, scipy, h5py, codecarbon);
// never the first python3 on PATH.
inline std::string python() { return required_env("GF_PYTHON"); }
// A helper script of the tests: tests/<folder>/<name>.
inline std::string test_script(const std::string& folder, const std::string& name) {
  return source_dir() + "/tests/" + folder + "/" + name;
}

}  // namespace gf::test
