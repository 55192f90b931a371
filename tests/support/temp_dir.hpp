#pragma once
// Folders for a test's files. TempDir: /tmp/gf-<name>-XXXXXX (mkdtemp: unique even when ctest
// runs tests side by side), removed with everything in it when the TempDir goes, unless
// GF_KEEP_TEMP is set (to look at what a failing test wrote). scratch_dir: a folder in the
// build tree that stays, for what a person should look at (contact sheets, screenshots).
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace gf::test {

class TempDir {
 public:
  explicit TempDir(const std::string& name,
                   const std::filesystem::path& parent = std::filesystem::temp_directory_path()) {
    std::string pattern = (parent / ("gf-" + name + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(pattern + ": mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    if (std::getenv("GF_KEEP_TEMP") == nullptr) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // A path inside the folder.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A fresh, empty <test's working folder>/scratch/<name> (removed first if it exists).
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::current_path() / "scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace gf::test
