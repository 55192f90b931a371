#include "energy/summary.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "energy/cost.hpp"

namespace gf::energy {
namespace {

nlohmann::json domains_json(const std::array<DomainEnergy, kNumDomains>& domains) {
  nlohmann::json json = nlohmann::json::object();
  for (int d = 0; d < kNumDomains; ++d)
    json[domain_name(static_cast<Domain>(d))] = {{"joules", domains[d].joules}, {"label", label_name(domains[d].label)}};
  return json;
}

Label parse_label(const std::string& name) { return base::parse_enum(name, kLabelNames, "energy record", "label"); }

void read_domains(base::Section section, std::array<DomainEnergy, kNumDomains>& domains) {
  for (int d = 0; d < kNumDomains; ++d) {
    const std::string name = domain_name(static_cast<Domain>(d));
    base::Section domain = section.child(name.c_str());
    domain.read("joules", domains[d].joules);
    domain.read("label", domains[d].label, kLabelNames);
    domain.finish();
  }
  section.finish();
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string number(double x) {
  std::ostringstream out;
  out << std::setprecision(12) << x;
  return out.str();
}

std::string os_name() {
  utsname name{};
  if (uname(&name) != 0) return "";
  return std::string(name.sysname) + "-" + name.release + "-" + name.machine;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? "" : line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "";
}

double ram_total_gb() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * page / (1024.0 * 1024.0 * 1024.0) : 0.0;
}

}  // namespace

nlohmann::json RankRecord::to_json() const {
  nlohmann::json phases = nlohmann::json::array();
  for (double j : phase_joules) phases.push_back(j);
  return {{"rank", rank}, {"host", host}, {"duration_s", duration_s}, {"domains", domains_json(domains)},
          {"phases", phases}, {"gpus", gpus}, {"gpu_name", gpu_name}, {"notes", notes}};
}

RankRecord RankRecord::from_json(const nlohmann::json& json) {
  RankRecord record;
  record.rank = json.at("rank");
  record.host = json.at("host");
  record.duration_s = json.at("duration_s");
  for (int d = 0; d < kNumDomains; ++d) {
    const auto& domain = json.at("domains").at(domain_name(static_cast<Domain>(d)));
    record.domains[d] = {domain.at("joules").get<double>(), parse_label(domain.at("label"))};
  }
  for (int p = 0; p < kNumPhases; ++p) record.phase_joules[p] = json.at("phases").at(p);
  record.gpus = json.at("gpus");
  record.gpu_name = json.at("gpu_name");
  record.notes = json.at("notes").get<std::vector<std::string>>();
  return record;
}

EnergySummary summarize(const std::vector<RankRecord>& records, const EnergyOptions& options, double images,
                        double flops) {
  EnergySummary s;
  double rank_hours = 0, gpu_hours = 0;
  for (const auto& record : records) {
    s.duration_s = std::max(s.duration_s, record.duration_s);
    auto node = std::find_if(s.nodes.begin(), s.nodes.end(), [&](const NodeEnergy& n) { return n.host == record.host; });
    if (node == s.nodes.end()) {
      s.nodes.push_back({record.host, {}});
      node = s.nodes.end() - 1;
    }
    for (int d = 0; d < kNumDomains; ++d) {
      for (auto* total : {&node->domains[d], &s.domains[d]}) {
        total->joules += record.domains[d].joules;
        total->label = combine_labels(total->label, record.domains[d].label);
      }
    }
    for (int p = 0; p < kNumPhases; ++p) s.phase_joules[p] += record.phase_joules[p];
    s.gpus += record.gpus;
    rank_hours += record.duration_s / 3600.0;
    gpu_hours += record.gpus * record.duration_s / 3600.0;
    if (s.gpu_name.empty()) s.gpu_name = record.gpu_name;
    for (const auto& note : record.notes)
      if (std::find(s.notes.begin(), s.notes.end(), note) == s.notes.end()) s.notes.push_back(note);
  }
  for (const auto& d : s.domains) s.joules += d.joules;
  // Device-hours are GPU-hours; a CPU-only job counts each rank as one device.
  s.device_hours = s.gpus > 0 ? gpu_hours : rank_hours;
  if (options.device_price_per_hour >= 0) {
    s.device_price_per_hour = options.device_price_per_hour;
  } else if (s.gpus > 0) {
    const auto table = gpu_table_for(options);
    if (const GpuSpec* gpu = find_gpu(table, s.gpu_name)) s.device_price_per_hour = gpu->price_per_hour;
    else s.notes.push_back("GPU \"" + s.gpu_name + "\" is not in the GPU table: device-hours priced at 0");
  }
  const Bill bill = make_bill(s.joules, s.device_hours, s.device_price_per_hour, options);
  s.kwh = bill.kwh;
  s.kwh_x_pue = bill.kwh_x_pue;
  s.co2e_kg = bill.co2e_kg;
  s.energy_cost = bill.energy_cost;
  s.device_cost = bill.device_cost;
  s.cost = bill.cost;
  s.images = images;
  s.flops = flops;
  s.joules_per_image = images > 0 ? s.joules / images : 0.0;
  s.cost_per_image = images > 0 ? s.cost / images : 0.0;
  s.pue = options.pue;
  s.carbon_g_per_kwh = options.carbon_g_per_kwh;
  s.energy_price_per_kwh = options.energy_price_per_kwh;
  return s;
}

nlohmann::json EnergySummary::to_json() const {
  nlohmann::json node_list = nlohmann::json::array();
  for (const auto& node : nodes)
    node_list.push_back({{"host", node.host}, {"joules", node.joules()}, {"domains", domains_json(node.domains)}});
  nlohmann::json phases = nlohmann::json::object();
  for (int p = 0; p < kNumPhases; ++p) phases[phase_name(static_cast<Phase>(p))] = phase_joules[p];
  return {{"duration_s", duration_s},
          {"domains", domains_json(domains)},
          {"nodes", node_list},
          {"joules", joules},
          {"kwh", kwh},
          {"pue", pue},
          {"kwh_x_pue", kwh_x_pue},
          {"carbon_g_per_kwh", carbon_g_per_kwh},
          {"co2e_kg", co2e_kg},
          {"gpus", gpus},
          {"gpu_name", gpu_name},
          {"device_hours", device_hours},
          {"device_price_per_hour", device_price_per_hour},
          {"energy_price_per_kwh", energy_price_per_kwh},
          {"energy_cost", energy_cost},
          {"device_cost", device_cost},
          {"cost", cost},
          {"currency", "USD"},
          {"images", images},
          {"joules_per_image", joules_per_image},
          {"cost_per_image", cost_per_image},
          {"flops", flops},
          {"phases", phases},
          {"notes", notes}};
}

EnergySummary EnergySummary::from_json(const nlohmann::json& json, const std::string& source) {
  EnergySummary e;
  base::Section s = base::Section::of(json, "", source);
  s.read("duration_s", e.duration_s);
  read_domains(s.child("domains"), e.domains);
  for (base::Section& item : s.children("nodes")) {
    NodeEnergy node;
    item.read("host", node.host);
    item.skip("joules");  // the sum of its domains
    read_domains(item.child("domains"), node.domains);
    item.finish();
    e.nodes.push_back(std::move(node));
  }
  const std::pair<const char*, double*> numbers[] = {
      {"joules", &e.joules},
      {"kwh", &e.kwh},
      {"pue", &e.pue},
      {"kwh_x_pue", &e.kwh_x_pue},
      {"carbon_g_per_kwh", &e.carbon_g_per_kwh},
      {"co2e_kg", &e.co2e_kg},
      {"device_hours", &e.device_hours},
      {"device_price_per_hour", &e.device_price_per_hour},
      {"energy_price_per_kwh", &e.energy_price_per_kwh},
      {"energy_cost", &e.energy_cost},
      {"device_cost", &e.device_cost},
      {"cost", &e.cost},
      {"images", &e.images},
      {"joules_per_image", &e.joules_per_image},
      {"cost_per_image", &e.cost_per_image},
      {"flops", &e.flops},
  };
  for (const auto& [key, field] : numbers) s.read(key, *field);
  s.read("gpus", e.gpus);
  s.read("gpu_name", e.gpu_name);
  s.skip("currency");  // always USD
  base::Section phases = s.child("phases");
  for (int p = 0; p < kNumPhases; ++p) phases.read(phase_name(static_cast<Phase>(p)).c_str(), e.phase_joules[p]);
  phases.finish();
  s.read("notes", e.notes);
  s.finish();
  return e;
}

std::optional<EnergySummary> read_energy_summary(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  return EnergySummary::from_json(base::load_json_file(path), path);
}

std::string emissions_csv_header() {
  return "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,"
         "ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,"
         "cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,"
         "longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue";
}

std::string emissions_csv_row(const EnergySummary& s, const EnergyOptions& options, const RunInfo& run) {
  // CodeCarbon's units: seconds, kg CO2e, kg/s, W (mean power), kWh. Component energies are
  // at the device; energy_consumed and emissions include the PUE.
  const auto kwh = [](const DomainEnergy& d) { return d.joules / 3.6e6; };
  const auto watts = [&](const DomainEnergy& d) { return s.duration_s > 0 ? d.joules / s.duration_s : 0.0; };
  const auto& cpu = s.domains[static_cast<int>(Domain::kPackage)];
  const auto& gpu = s.domains[static_cast<int>(Domain::kGpu)];
  const auto& ram = s.domains[static_cast<int>(Domain::kDram)];
  const std::vector<std::string> fields = {
      run.timestamp, options.project_name, run.run_id, run.experiment_id, number(s.duration_s), number(s.co2e_kg),
      number(s.duration_s > 0 ? s.co2e_kg / s.duration_s : 0.0), number(watts(cpu)), number(watts(gpu)),
      number(watts(ram)), number(kwh(cpu)), number(kwh(gpu)), number(kwh(ram)), number(s.kwh_x_pue),
      options.country_name, options.country_iso_code, "", "", "", os_name(), "", "",
      std::to_string(std::max(1u, std::thread::hardware_concurrency())), cpu_model(), std::to_string(s.gpus),
      s.gpus > 0 ? std::to_string(s.gpus) + " x " + s.gpu_name : "", "", "", number(ram_total_gb()),
      cpu.label == Label::kMeasured ? "machine" : "process", "N", number(options.pue)};
  std::string row;
  for (const auto& field : fields) row += (row.empty() ? "" : ",") + csv_field(field);
  return row;
}

void append_emissions_row(const std::string& path, const std::string& row) {
  std::string content = emissions_csv_header() + "\n";
  std::ifstream in(path);
  std::string line;
  if (in && std::getline(in, line) && line == emissions_csv_header())
    while (std::getline(in, line))
      if (!line.empty()) content += line + "\n";
  base::write_file_atomic(path, content + row + "\n");
}

void print_summary(const EnergySummary& s, const EnergyOptions& options, std::ostream& out) {
  const auto g = [](double x) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.4g", x);
    return std::string(buffer);
  };
  out << "energy: " << s.nodes.size() << (s.nodes.size() == 1 ? " node, " : " nodes, ") << s.gpus
      << (s.gpus == 1 ? " GPU, " : " GPUs, ")
      << g(s.duration_s) << " s\n";
  for (int d = 0; d < kNumDomains; ++d)
    out << "  " << std::left << std::setw(10) << domain_name(static_cast<Domain>(d)) << std::right << std::setw(12)
        << g(s.domains[d].joules) << " J  " << label_name(s.domains[d].label) << "\n";
  out << "  " << std::left << std::setw(10) << "total" << std::right << std::setw(12) << g(s.joules) << " J  = "
      << g(s.kwh) << " kWh, x PUE " << g(options.pue) << " = " << g(s.kwh_x_pue) << " kWh\n"
      << "  carbon    " << g(s.co2e_kg) << " kg CO2e at " << g(options.carbon_g_per_kwh) << " g/kWh\n"
      << "  cost      $" << g(s.cost) << " = energy $" << g(s.energy_cost) << " at $" << g(options.energy_price_per_kwh)
      << "/kWh + " << g(s.device_hours) << " device-h x $" << g(s.device_price_per_hour) << "/h\n";
  if (s.images > 0)
    out << "  per image " << g(s.joules_per_image) << " J, $" << g(s.cost_per_image) << " (" << g(s.images)
        << " images, " << g(s.flops) << " FLOPs)\n";
  out << "  phases   ";
  for (int p = 0; p < kNumPhases; ++p)
    if (s.phase_joules[p] > 0)
      out << " " << phase_name(static_cast<Phase>(p)) << " " << g(s.joules > 0 ? 100.0 * s.phase_joules[p] / s.joules : 0.0)
          << "%";
  out << "\n";
  for (const auto& note : s.notes) out << "  note: " << note << "\n";
}

}  // namespace gf::energy
