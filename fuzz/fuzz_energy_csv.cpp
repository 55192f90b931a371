// libFuzzer target for the energy.csv reader (energy/energy_csv.cpp) that `status` and
// `report` use on a run folder. A std::exception is the right answer to a malformed file; a
// crash, a sanitizer report, an allocation past -malloc_limit_mb or a timeout is a finding.
#include <cstdint>
#include <exception>

#include "energy/energy_csv.hpp"
#include "fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("energy.csv");
  try {
    gf::energy::read_energy_csv(scratch.write(data, size));
  } catch (const std::exception&) {
  }
  return 0;
}
