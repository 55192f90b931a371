#include "energy/energy_options.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

namespace gf::energy {
namespace {

[[noreturn]] void bad(const std::string& key, const nlohmann::json& value, const std::string& expected) {
  throw std::runtime_error("energy" + (key.empty() ? "" : "." + key) + ": found " + value.dump() + ", expected " + expected);
}

double number_at_least(const std::string& key, const nlohmann::json& value, double minimum, bool inclusive) {
  std::ostringstream expected;
  expected << "a number " << (inclusive ? ">= " : "> ") << minimum;
  if (!value.is_number()) bad(key, value, expected.str());
  const double x = value.get<double>();
  if (inclusive ? x < minimum : x <= minimum) bad(key, value, expected.str());
  return x;
}

std::string text(const std::string& key, const nlohmann::json& value) {
  if (!value.is_string()) bad(key, value, "a string");
  return value.get<std::string>();
}

int integer_at_least(const std::string& key, const nlohmann::json& value, int minimum) {
  if (!value.is_number_integer() || value.get<long long>() < minimum)
    bad(key, value, "an integer >= " + std::to_string(minimum));
  return value.get<int>();
}

}  // namespace

EnergyOptions energy_options_from_json(const nlohmann::json& section) {
  EnergyOptions o;
  if (section.is_null()) return o;
  if (!section.is_object()) bad("", section, "an object");
  using Setter = std::function<void(const std::string&, const nlohmann::json&)>;
  const std::map<std::string, Setter> fields = {
      {"sample_hz", [&](auto& k, auto& v) { o.sample_hz = number_at_least(k, v, 0.0, false); }},
      {"pue", [&](auto& k, auto& v) { o.pue = number_at_least(k, v, 1.0, true); }},
      {"carbon_g_per_kwh", [&](auto& k, auto& v) { o.carbon_g_per_kwh = number_at_least(k, v, 0.0, true); }},
      {"energy_price_per_kwh", [&](auto& k, auto& v) { o.energy_price_per_kwh = number_at_least(k, v, 0.0, true); }},
      {"device_price_per_hour", [&](auto& k, auto& v) {
         // -1 (the default) means "from the GPU table"; any other negative is a typo.
         if (v.is_number() && v.template get<double>() == -1.0) o.device_price_per_hour = -1.0;
         else o.device_price_per_hour = number_at_least(k, v, 0.0, true);
       }},
      {"cpu_tdp_w", [&](auto& k, auto& v) { o.cpu_tdp_w = number_at_least(k, v, 0.0, true); }},
      {"cpu_cores", [&](auto& k, auto& v) { o.cpu_cores = integer_at_least(k, v, 0); }},
      {"gpu_board_power_w", [&](auto& k, auto& v) {
         if (v.is_number() && v.template get<double>() == -1.0) o.gpu_board_power_w = -1.0;
         else o.gpu_board_power_w = number_at_least(k, v, 0.0, true);
       }},
      {"gpu", [&](auto& k, auto& v) { o.gpu = text(k, v); }},
      {"gpu_ids", [&](auto& k, auto& v) {
         if (!v.is_array()) bad(k, v, "an array of GPU indices");
         o.gpu_ids.clear();
         for (size_t i = 0; i < v.size(); ++i) o.gpu_ids.push_back(integer_at_least(k + "[" + std::to_string(i) + "]", v[i], 0));
       }},
      {"gpus_per_rank", [&](auto& k, auto& v) { o.gpus_per_rank = integer_at_least(k, v, -1); }},
      {"gpu_table", [&](auto& k, auto& v) { o.gpu_table = text(k, v); }},
      {"project_name", [&](auto& k, auto& v) { o.project_name = text(k, v); }},
      {"country_name", [&](auto& k, auto& v) { o.country_name = text(k, v); }},
      {"country_iso_code", [&](auto& k, auto& v) { o.country_iso_code = text(k, v); }},
  };
  for (const auto& [key, value] : section.items()) {
    const auto field = fields.find(key);
    if (field == fields.end()) {
      std::string known;
      for (const auto& [name, setter] : fields) known += (known.empty() ? "" : ", ") + name;
      throw std::runtime_error("energy." + key + ": unknown field, expected one of " + known);
    }
    field->second(key, value);
  }
  return o;
}

nlohmann::json energy_options_to_json(const EnergyOptions& o) {
  return {{"sample_hz", o.sample_hz},
          {"pue", o.pue},
          {"carbon_g_per_kwh", o.carbon_g_per_kwh},
          {"energy_price_per_kwh", o.energy_price_per_kwh},
          {"device_price_per_hour", o.device_price_per_hour},
          {"cpu_tdp_w", o.cpu_tdp_w},
          {"cpu_cores", o.cpu_cores},
          {"gpu_board_power_w", o.gpu_board_power_w},
          {"gpu", o.gpu},
          {"gpu_ids", o.gpu_ids},
          {"gpus_per_rank", o.gpus_per_rank},
          {"gpu_table", o.gpu_table},
          {"project_name", o.project_name},
          {"country_name", o.country_name},
          {"country_iso_code", o.country_iso_code}};
}

}  // namespace gf::energy
