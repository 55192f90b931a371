#include "energy/cost.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <stdexcept>

#include "base/json_reader.hpp"

namespace gf::energy {
namespace {

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

double nonnegative_field(const nlohmann::json& row, const char* key, const std::string& where) {
  const auto& value = row.at(key);
  if (!value.is_number() || value.get<double>() < 0)
    throw std::runtime_error(where + "." + key + ": found " + value.dump() + ", expected a number >= 0");
  return value.get<double>();
}

}  // namespace

std::vector<GpuSpec> default_gpu_table() {
  // name, max board power (W), indicative on-demand USD per GPU-hour (2024 GPU clouds),
  // dense bf16 tensor TFLOPS from the vendor datasheets (V100: fp16).
  return {
      {"A100", 400.0, 1.80, 312.0},       // A100 SXM4 80GB
      {"H100", 700.0, 2.99, 989.4},       // H100 SXM5
      {"H200", 700.0, 3.50, 989.4},       // H200 SXM (H100's tensor cores, more and faster memory)
      {"V100", 300.0, 0.55, 125.0},       // V100 SXM2, fp16 (no bf16)
      {"RTX A6000", 300.0, 0.80, 154.8},
      {"RTX 4090", 450.0, 0.50, 165.2},
  };
}

void apply_gpu_table_json(std::vector<GpuSpec>& table, const nlohmann::json& rows, const std::string& origin) {
  if (!rows.is_object())
    throw std::runtime_error(origin + ": found " + std::string(rows.type_name()) +
                             ", expected an object {\"GPU name\": {\"board_power_w\": W, \"price_per_hour\": USD, \"dense_tflops\": T}}");
  for (const auto& [name, row] : rows.items()) {
    const std::string where = origin + ": " + name;
    if (!row.is_object()) throw std::runtime_error(where + ": found " + row.dump() + ", expected an object");
    for (const auto& [key, value] : row.items())
      if (key != "board_power_w" && key != "price_per_hour" && key != "dense_tflops")
        throw std::runtime_error(where + "." + key + ": unknown field, expected board_power_w, price_per_hour or dense_tflops");
    const std::string wanted = upper(name);  // C++17 lambdas cannot capture a structured binding (clang refuses)
    auto known = std::find_if(table.begin(), table.end(), [&](const GpuSpec& g) { return upper(g.name) == wanted; });
    if (known == table.end()) {
      for (const char* key : {"board_power_w", "price_per_hour", "dense_tflops"})
        if (!row.contains(key)) throw std::runtime_error(where + ": a new GPU needs " + key);
      table.push_back({name, 0, 0, 0});
      known = table.end() - 1;
    }
    if (row.contains("board_power_w")) known->board_power_w = nonnegative_field(row, "board_power_w", where);
    if (row.contains("price_per_hour")) known->price_per_hour = nonnegative_field(row, "price_per_hour", where);
    if (row.contains("dense_tflops")) known->dense_tflops = nonnegative_field(row, "dense_tflops", where);
  }
}

void apply_gpu_table_file(std::vector<GpuSpec>& table, const std::string& path) {
  apply_gpu_table_json(table, base::load_json_file(path, base::JsonTop::kAny), path);
}

std::vector<GpuSpec> gpu_table_for(const EnergyOptions& options) {
  auto table = default_gpu_table();
  if (!options.gpu_table.empty()) apply_gpu_table_file(table, options.gpu_table);
  return table;
}

const GpuSpec* find_gpu(const std::vector<GpuSpec>& table, const std::string& name) {
  const std::string wanted = upper(name);
  if (wanted.empty()) return nullptr;
  for (const auto& gpu : table)
    if (upper(gpu.name) == wanted) return &gpu;
  // A table name inside a device name ("NVIDIA A100-SXM4-80GB" has "A100"): longest wins.
  const GpuSpec* best = nullptr;
  for (const auto& gpu : table)
    if (wanted.find(upper(gpu.name)) != std::string::npos && (!best || gpu.name.size() > best->name.size()))
      best = &gpu;
  if (best) return best;
  // A short form of exactly one table name ("a6000").
  for (const auto& gpu : table) {
    if (upper(gpu.name).find(wanted) == std::string::npos) continue;
    if (best) return nullptr;
    best = &gpu;
  }
  return best;
}

const GpuSpec& require_gpu(const std::vector<GpuSpec>& table, const std::string& name) {
  if (const GpuSpec* gpu = find_gpu(table, name)) return *gpu;
  std::string known;
  for (const auto& gpu : table) known += (known.empty() ? "" : ", ") + gpu.name;
  throw std::runtime_error("--gpu: found \"" + name + "\", expected one of " + known + " (or a row added with --gpu-table)");
}

Bill make_bill(double joules, double device_hours, double device_price_per_hour, const EnergyOptions& options) {
  Bill bill;
  bill.joules = joules;
  bill.kwh = joules / 3.6e6;
  bill.kwh_x_pue = bill.kwh * options.pue;
  bill.co2e_kg = bill.kwh_x_pue * options.carbon_g_per_kwh / 1000.0;
  bill.device_hours = device_hours;
  bill.energy_cost = bill.kwh_x_pue * options.energy_price_per_kwh;
  bill.device_cost = device_hours * device_price_per_hour;
  bill.cost = bill.energy_cost + bill.device_cost;
  return bill;
}

Estimate estimate_run(const PlannedRun& run, const EnergyOptions& options) {
  Estimate estimate;
  estimate.run = run;
  estimate.device_price_per_hour = options.device_price_per_hour >= 0 ? options.device_price_per_hour : run.gpu.price_per_hour;
  const double device_hours = run.gpus * run.hours;
  const double joules = run.joules >= 0 ? run.joules : device_hours * run.gpu.board_power_w * 3600.0;
  estimate.bill = make_bill(joules, device_hours, estimate.device_price_per_hour, options);
  return estimate;
}

double hours_for_flops(double flops, const GpuSpec& gpu, int gpus, double mfu) {
  if (gpu.dense_tflops <= 0 || gpus <= 0 || mfu <= 0)
    throw std::runtime_error("GPU " + gpu.name + ": cannot turn FLOPs into hours without dense_tflops, GPUs and utilisation > 0");
  return flops / (gpu.dense_tflops * 1e12 * mfu * gpus) / 3600.0;
}

double hours_for_images(double images, double images_per_s, int gpus) {
  if (images_per_s <= 0 || gpus <= 0)
    throw std::runtime_error("--images-per-s: found " + std::to_string(images_per_s) + " on " + std::to_string(gpus) +
                             " GPU(s), expected a measured rate > 0 per GPU");
  return images / (images_per_s * gpus) / 3600.0;
}

}  // namespace gf::energy
