#pragma once
// Options of the energy tracker and the cost model: the "energy" section of a run config.
// Defaults are documented next to each field; every one can be set in the config.
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace gf::base {
class Section;  // base/json_reader.hpp
}

namespace gf::energy {

struct EnergyOptions {
  // Sampler rate of energy.csv. 1 Hz keeps the sampler far below 0.5% of a step and, with
  // RAPL's ~262 kJ counter range, far inside one wrap period even at 1 kW per package.
  double sample_hz = 1.0;
  // Facility overhead (Power Usage Effectiveness). 1.0 reports what the devices drew; set
  // your data centre's value (the Uptime Institute's 2023 survey average is about 1.58).
  double pue = 1.0;
  // Grid carbon intensity, g CO2e per kWh. Default: the world average of 475 g/kWh (IEA
  // 2019, the same fallback CodeCarbon uses when it knows no country).
  double carbon_g_per_kwh = 475.0;
  // Electricity price, USD per kWh (about the US commercial average, EIA 2023).
  double energy_price_per_kwh = 0.13;
  // USD per device-hour. -1: take the price of `gpu` (or of the GPU NVML names) from
  // the GPU table (energy/cost.hpp); CPU-only runs then price device-hours at 0.
  double device_price_per_hour = -1.0;
  // Fallback CPU model: a process's CPU seconds × cpu_tdp_w / cpu_cores. cpu_cores 0 = the
  // logical cores of the node. 150 W: a typical server CPU package; set yours.
  double cpu_tdp_w = 150.0;
  int cpu_cores = 0;
  // Fallback GPU model: wall time × board power per GPU. -1: the board power
  // of `gpu` (or NVML's name) in the GPU table, else 300 W.
  double gpu_board_power_w = -1.0;
  // GPU model name in the GPU table ("A100", "H100", ...). Empty: the name NVML reports.
  std::string gpu;
  // NVML indices (physical, PCI order) this rank measures. Empty: the CUDA device of this
  // rank, i.e. CUDA_VISIBLE_DEVICES entry (local_rank mod visible count). A GPU that several
  // ranks of a host drive (same NVML UUID) is counted by the lowest of them only.
  std::vector<int> gpu_ids;
  // GPUs this rank drives: -1 = auto (1 when NVML finds a GPU, else 0). Set by the caller
  // when it knows its device (a CUDA run with NVML unreadable still gets an estimate).
  int gpus_per_rank = -1;
  // Extra GPU table rows / overrides, same format as `greenfound cost --gpu-table`.
  std::string gpu_table;  // path to a JSON file; empty = built-in table only
  // Reported as is in emissions.csv (CodeCarbon's columns).
  std::string project_name = "greenfound";
  std::string country_name;
  std::string country_iso_code;
};

// Reads the "energy" section of a run config into `options` (absent keys keep their value)
// and validates it. Unknown keys, wrong types and values out of range are base::FieldErrors
// naming the field, e.g. "run.json: energy.pue: found 0.5, expected a number >= 1".
void read_energy_options(base::Section& section, EnergyOptions& options);
void validate_energy_options(const EnergyOptions& options, const std::string& source);
// The same for the section's object alone (null: the defaults).
EnergyOptions energy_options_from_json(const nlohmann::json& section, const std::string& source = "");
nlohmann::json energy_options_to_json(const EnergyOptions& options);

}  // namespace gf::energy
