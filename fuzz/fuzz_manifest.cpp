// libFuzzer target for the dataset manifest reader (data/manifest.cpp): the input is a
// dataset folder's manifest.json. A std::exception is the right answer to a malformed file;
// a crash, a sanitizer report, an allocation past -malloc_limit_mb or a timeout is a finding.
#include <cstdint>
#include <exception>

#include "data/dataset.hpp"
#include "fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("manifest.json");
  scratch.write(data, size);
  try {
    gf::data::read_manifest(scratch.dir());
  } catch (const std::exception&) {
  }
  return 0;
}
