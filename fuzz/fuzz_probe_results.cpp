// libFuzzer target for the probe's results.json reader (eval/results.cpp) that `report` and
// `sweep` use on finished runs. A std::exception is the right answer to a malformed file; a
// crash, a sanitizer report, an allocation past -malloc_limit_mb or a timeout is a finding.
#include <cstdint>
#include <exception>

#include "eval/results.hpp"
#include "fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("results.json");
  try {
    gf::eval::read_results(scratch.write(data, size));
  } catch (const std::exception&) {
  }
  return 0;
}
