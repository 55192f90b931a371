// libFuzzer target for a run config file as `pretrain`, `submit` and `cost --config` read it:
// launcher/config_file.cpp loads the JSON, train/run_config.cpp types and validates it. A
// config that parses must also read back from what to_json writes of it (the run folder's
// config.json, which a resume reads): a failure there aborts, as a finding. A std::exception
// on the file itself is the right answer to a malformed file; a crash, a sanitizer report, an
// allocation past -malloc_limit_mb or a timeout is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "fuzz/scratch_file.hpp"
#include "launcher/config_file.hpp"
#include "train/run_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("config.json");
  gf::train::RunConfig config;
  try {
    config = gf::train::parse_run_config(gf::launcher::load_config(scratch.write(data, size), {}), scratch.path());
  } catch (const std::exception&) {
    return 0;
  }
  try {
    gf::train::parse_run_config(gf::train::to_json(config), "config.json written back");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "a config that parses does not read back from its to_json: %s\n", e.what());
    std::abort();
  }
  return 0;
}
