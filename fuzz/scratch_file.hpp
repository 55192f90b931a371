#pragma once
// Where a fuzz target puts each input for a reader that takes a path: one folder per process
// (libFuzzer's -jobs run several at once) under TMPDIR, removed with its files at exit.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace gf::fuzz {

class ScratchFile {
 public:
  // `name`: the file's name in the folder (a reader may want it, e.g. manifest.json).
  explicit ScratchFile(const std::string& name)
      : dir_(std::filesystem::temp_directory_path() / ("gf-fuzz-" + std::to_string(::getpid()))),
        path_((dir_ / name).string()) {
    std::filesystem::create_directories(dir_);
  }
  ~ScratchFile() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's content with `size` bytes; returns its path.
  const std::string& write(const uint8_t* data, size_t size) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path_;
  }
  const std::string& path() const { return path_; }
  std::string dir() const { return dir_.string(); }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

}  // namespace gf::fuzz
