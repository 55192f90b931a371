#include "energy/energy_options.hpp"

#include <nlohmann/json.hpp>

#include "base/json_reader.hpp"

namespace gf::energy {

namespace {

// Every option, once, as (key, field): read and written in this order. `O` is EnergyOptions or
// const EnergyOptions.
template <class O, class F>
void visit_options(O& o, F&& f) {
  f("sample_hz", o.sample_hz);
  f("pue", o.pue);
  f("carbon_g_per_kwh", o.carbon_g_per_kwh);
  f("energy_price_per_kwh", o.energy_price_per_kwh);
  f("device_price_per_hour", o.device_price_per_hour);
  f("cpu_tdp_w", o.cpu_tdp_w);
  f("cpu_cores", o.cpu_cores);
  f("gpu_board_power_w", o.gpu_board_power_w);
  f("gpu", o.gpu);
  f("gpu_ids", o.gpu_ids);
  f("gpus_per_rank", o.gpus_per_rank);
  f("gpu_table", o.gpu_table);
  f("project_name", o.project_name);
  f("country_name", o.country_name);
  f("country_iso_code", o.country_iso_code);
}

}  // namespace

void read_energy_options(base::Section& s, EnergyOptions& o) {
  visit_options(o, [&](const char* key, auto& field) { s.read(key, field); });
  s.finish();
  validate_energy_options(o, s.source());
}

void validate_energy_options(const EnergyOptions& o, const std::string& source) {
  const base::Checker check(source);
  check.require(o.sample_hz > 0, "energy.sample_hz", o.sample_hz, "a number > 0");
  check.require(o.pue >= 1, "energy.pue", o.pue, "a number >= 1");
  check.require(o.carbon_g_per_kwh >= 0, "energy.carbon_g_per_kwh", o.carbon_g_per_kwh, "a number >= 0");
  check.require(o.energy_price_per_kwh >= 0, "energy.energy_price_per_kwh", o.energy_price_per_kwh, "a number >= 0");
  // -1 (the default) means "from the GPU table"; any other negative is a typo.
  check.require(o.device_price_per_hour >= 0 || o.device_price_per_hour == -1, "energy.device_price_per_hour",
                o.device_price_per_hour, "a number >= 0 (or -1: the GPU table's price)");
  check.require(o.cpu_tdp_w >= 0, "energy.cpu_tdp_w", o.cpu_tdp_w, "a number >= 0");
  check.require(o.cpu_cores >= 0, "energy.cpu_cores", o.cpu_cores, "an integer >= 0");
  check.require(o.gpu_board_power_w >= 0 || o.gpu_board_power_w == -1, "energy.gpu_board_power_w",
                o.gpu_board_power_w, "a number >= 0 (or -1: the GPU table's board power)");
  for (size_t i = 0; i < o.gpu_ids.size(); ++i)
    check.require(o.gpu_ids[i] >= 0, "energy.gpu_ids[" + std::to_string(i) + "]", o.gpu_ids[i], "an integer >= 0");
  check.require(o.gpus_per_rank >= -1, "energy.gpus_per_rank", o.gpus_per_rank, "an integer >= -1 (-1 = automatic)");
}

EnergyOptions energy_options_from_json(const nlohmann::json& section, const std::string& source) {
  EnergyOptions o;
  base::Section s = base::Section::of(section, "energy", source);
  read_energy_options(s, o);
  return o;
}

nlohmann::json energy_options_to_json(const EnergyOptions& o) {
  nlohmann::json out = nlohmann::json::object();
  visit_options(o, [&](const char* key, const auto& field) { out[key] = field; });
  return out;
}

}  // namespace gf::energy
