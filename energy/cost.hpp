#pragma once
// The kWh / CO2e / money model shared by the tracker (measured runs) and `greenfound cost`
// (planned runs), and the table of GPU models it prices.
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "energy/energy_options.hpp"

namespace gf::energy {

// One GPU model. Board power: the vendor's maximum board power (SXM parts for A100/H100/V100).
// Price: an indicative on-demand cloud price per GPU-hour (2024, USD) — override it with
// your own (--gpu-table, energy.gpu_table). dense_tflops: dense bf16 tensor-core peak
// (fp16 on V100, which has no bf16), used to turn analytic FLOPs into hours.
struct GpuSpec {
  std::string name;
  double board_power_w = 0.0;
  double price_per_hour = 0.0;
  double dense_tflops = 0.0;
};

// A100, H100, H200, V100, RTX A6000, RTX 4090.
std::vector<GpuSpec> default_gpu_table();
// Applies a JSON object {"NAME": {"board_power_w": W, "price_per_hour": USD, "dense_tflops": T}}
// to `table`: a known name (case-insensitive) has the given fields replaced, a new name is
// appended and must give all three. `origin` names the source in errors.
void apply_gpu_table_json(std::vector<GpuSpec>& table, const nlohmann::json& rows, const std::string& origin);
// Reads a file in that format and applies it.
void apply_gpu_table_file(std::vector<GpuSpec>& table, const std::string& path);
// The table with options.gpu_table applied.
std::vector<GpuSpec> gpu_table_for(const EnergyOptions& options);
// Case-insensitive: an exact name; else the longest table name inside `name` (NVML's
// "NVIDIA A100-SXM4-80GB" finds "A100"); else the one table name containing `name` ("a6000").
// nullptr when nothing (or more than one short-form match) fits.
const GpuSpec* find_gpu(const std::vector<GpuSpec>& table, const std::string& name);
// As find_gpu, but an unknown name is an error listing the known ones.
const GpuSpec& require_gpu(const std::vector<GpuSpec>& table, const std::string& name);

// Money and carbon of an amount of device energy and device time.
struct Bill {
  double joules = 0.0;
  double kwh = 0.0;
  double kwh_x_pue = 0.0;
  double co2e_kg = 0.0;         // kwh_x_pue × carbon_g_per_kwh / 1000
  double device_hours = 0.0;
  double energy_cost = 0.0;     // kwh_x_pue × energy_price_per_kwh
  double device_cost = 0.0;     // device_hours × device_price_per_hour
  double cost = 0.0;            // energy_cost + device_cost
};
Bill make_bill(double joules, double device_hours, double device_price_per_hour, const EnergyOptions& options);

// A planned run on `gpus` GPUs of one model for `hours` of wall time. Device energy: the
// measured `joules` of the whole run when >= 0 (a measured J/image times the images), else
// every GPU drawing its board power (an upper bound: training at high utilisation runs close
// to it). Host CPUs, memory and networking are left to the PUE. Device price:
// options.device_price_per_hour when >= 0, else the table's.
struct PlannedRun {
  GpuSpec gpu;
  int gpus = 1;
  double hours = 0.0;
  double joules = -1.0;
};
struct Estimate {
  PlannedRun run;
  double device_price_per_hour = 0.0;
  Bill bill;
};
Estimate estimate_run(const PlannedRun& run, const EnergyOptions& options);

// Hours to execute `flops` on `gpus` GPUs at model-FLOPs utilisation `mfu` of the dense peak.
double hours_for_flops(double flops, const GpuSpec& gpu, int gpus, double mfu);
// Hours to process `images` on `gpus` GPUs at a measured `images_per_s` per GPU.
double hours_for_images(double images, double images_per_s, int gpus);
// The utilisation `greenfound cost` assumes: 35% of the dense bf16 peak, an assumption in the
// range usually reported for bf16 transformer training; small models such as ViT-S on the
// fastest GPUs may reach less (pass --mfu).
inline constexpr double kDefaultMfu = 0.35;

}  // namespace gf::energy
