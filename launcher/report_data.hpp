#pragma once
// What `greenfound report` reads from a run folder. Every file is optional: a run still in
// progress (or one that never reached a stage) yields what exists so far.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace gf::launcher {

struct EnergySample {
  double time = 0;  // unix seconds
  int rank = 0;
  std::string host, device, domain, label;
  double joules = 0, watts = 0;
};

struct RunData {
  std::string dir;
  std::string name;                     // folder name, used as the run's label
  nlohmann::json config;                // config.json (null when absent)
  nlohmann::json provenance;            // provenance.json: the sessions that ran it
  std::vector<nlohmann::json> metrics;  // metrics.jsonl, one record per logged step
  std::vector<EnergySample> energy_samples;  // energy.csv
  nlohmann::json energy;                // energy.json
  nlohmann::json results;               // probe results.json (RUN_DIR/ or RUN_DIR/probe/)
  std::vector<std::string> notes;       // files that were present but unreadable
};

// Reads RUN_DIR's files; a missing folder is an error, missing files are not.
RunData read_run(const std::string& dir);

}  // namespace gf::launcher
