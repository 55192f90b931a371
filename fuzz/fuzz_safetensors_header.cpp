// libFuzzer target for the safetensors reader (model/safetensors.cpp): the input is the whole
// file. A std::exception is the right answer to a malformed file; a crash, a sanitizer report,
// an allocation past -malloc_limit_mb or a timeout is a finding.
#include <unistd.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/weights.hpp"

namespace {

// One scratch file per process (libFuzzer's -jobs run several), removed at exit.
struct Scratch {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("gf-fuzz-safetensors-" + std::to_string(::getpid()) + ".safetensors")).string();
  ~Scratch() { std::filesystem::remove(path); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Scratch scratch;
  std::ofstream(scratch.path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  try {
    gf::model::read_safetensors(scratch.path);
  } catch (const std::exception&) {
  }
  return 0;
}
