#pragma once
// Internal to energy/: what each rank contributes at finish(), how the job-wide summary is
// made from those, and the files rank 0 writes (energy.json, emissions.csv).
#include <nlohmann/json.hpp>

#include <array>
#include <string>
#include <vector>

#include "energy/energy_options.hpp"
#include "energy/tracker.hpp"

namespace gf::energy {

struct RankRecord {
  int rank = 0;
  std::string host;
  double duration_s = 0.0;
  std::array<DomainEnergy, kNumDomains> domains;  // this rank's meters (after GPU de-duplication)
  std::array<double, kNumPhases> phase_joules{};
  int gpus = 0;                                   // GPUs this rank counts
  std::string gpu_name;                           // NVML's name or options.gpu
  std::vector<std::string> notes;                 // why a domain is estimated or missing

  nlohmann::json to_json() const;
  static RankRecord from_json(const nlohmann::json& json);
};

// The job-wide summary of every rank's record (rank order), identical on every rank.
EnergySummary summarize(const std::vector<RankRecord>& records, const EnergyOptions& options,
                        double images, double flops);

// CodeCarbon's emissions.csv columns (its 2.x output, the format most tools read).
std::string emissions_csv_header();
struct RunInfo {
  std::string run_id;
  std::string experiment_id;
  std::string timestamp;  // %Y-%m-%dT%H:%M:%S
};
std::string emissions_csv_row(const EnergySummary& summary, const EnergyOptions& options, const RunInfo& run);

// emissions.csv: keeps the rows of an existing file with the same header, appends `row`.
void append_emissions_row(const std::string& path, const std::string& row);

void print_summary(const EnergySummary& summary, const EnergyOptions& options, std::ostream& out);

}  // namespace gf::energy
