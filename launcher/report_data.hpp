#pragma once
// What `greenfound report` reads from a run folder, each file through its writer's typed
// reader. Every file is optional: a run still in progress (or one that never reached a
// stage) yields what exists so far; a file that exists but is wrongly typed is an error
// naming the file and the field.
#include <optional>
#include <string>
#include <vector>

#include "energy/energy_csv.hpp"
#include "energy/tracker.hpp"
#include "eval/results.hpp"
#include "train/metrics_record.hpp"
#include "train/provenance.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {

struct RunData {
  std::string dir;
  std::string name;                            // folder name, used as the run's label
  std::optional<train::RunConfig> config;      // config.json
  train::Provenance provenance;                // provenance.json: the sessions that ran it
  std::vector<train::MetricsRecord> metrics;   // metrics.jsonl, one record per logged step
  energy::EnergyCsv energy_samples;            // energy.csv
  std::optional<energy::EnergySummary> energy; // energy.json
  std::optional<eval::ProbeResults> results;   // probe results.json (RUN_DIR/ or RUN_DIR/probe/)
};

// Reads RUN_DIR's files; a missing folder, or one holding none of them, is an error; other
// missing files are not (a run still in progress).
RunData read_run(const std::string& dir);

}  // namespace gf::launcher
