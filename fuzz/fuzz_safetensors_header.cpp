// libFuzzer target for the safetensors reader (model/safetensors.cpp): the input is the whole
// file. A std::exception is the right answer to a malformed file; a crash, a sanitizer report,
// an allocation past -malloc_limit_mb or a timeout is a finding.
#include <cstdint>
#include <exception>

#include "fuzz/scratch_file.hpp"
#include "model/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("input.safetensors");
  try {
    gf::model::read_safetensors(scratch.write(data, size));
  } catch (const std::exception&) {
  }
  return 0;
}
