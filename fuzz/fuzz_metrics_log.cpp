// libFuzzer target for the metrics.jsonl reader (train/metrics_record.cpp) that `status`,
// `report` and a resumed run use on a run folder. A std::exception is the right answer to a
// malformed file; a crash, a sanitizer report, an allocation past -malloc_limit_mb or a
// timeout is a finding.
#include <cstdint>
#include <exception>

#include "fuzz/scratch_file.hpp"
#include "train/metrics_record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("metrics.jsonl");
  try {
    gf::train::read_metrics(scratch.write(data, size));
  } catch (const std::exception&) {
  }
  return 0;
}
