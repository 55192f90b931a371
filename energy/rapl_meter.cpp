// RAPL energy counters from the powercap sysfs tree:
//   <root>/intel-rapl:N/{name = "package-N", energy_uj, max_energy_range_uj}
//   <root>/intel-rapl:N:M/{name = "dram", ...}    (core/uncore/psys zones are not counted:
//   core and uncore are inside the package, psys overlaps everything)
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "energy/meters.hpp"

namespace gf::energy {
namespace {

namespace fs = std::filesystem;

bool read_text(const fs::path& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::getline(in, out);
  return static_cast<bool>(in) || !out.empty();
}

bool read_counter(const fs::path& path, unsigned long long& value) {
  std::string text;
  if (!read_text(path, text) || text.empty()) return false;
  char* end = nullptr;
  value = std::strtoull(text.c_str(), &end, 10);
  return end != text.c_str();
}

struct Zone {
  std::string device;
  fs::path energy_file;
  Domain domain;
  double range_uj;      // the counter runs 0..range_uj, then wraps to 0
  double last_uj;       // raw counter at the previous read
  double total_uj = 0;  // unwrapped since open
};

class RaplMeter : public Meter {
 public:
  explicit RaplMeter(std::vector<Zone> zones) : zones_(std::move(zones)) {}

  std::vector<MeterReading> read() override {
    std::vector<MeterReading> readings;
    readings.reserve(zones_.size());
    for (auto& zone : zones_) {
      unsigned long long raw = 0;
      if (read_counter(zone.energy_file, raw)) {
        const double now = static_cast<double>(raw);
        // A smaller value means the counter passed range_uj and restarted at 0 (the sampler
        // reads far more often than the counter wraps: ~262 kJ per wrap on current CPUs).
        double delta = now - zone.last_uj;
        if (delta < 0) delta += zone.range_uj;
        zone.total_uj += delta;
        zone.last_uj = now;
      }
      readings.push_back({zone.device, zone.energy_file.parent_path().string(), zone.domain,
                          zone.total_uj * 1e-6, Label::kMeasured});
    }
    return readings;
  }

 private:
  std::vector<Zone> zones_;
};

}  // namespace

std::string powercap_root() {
  const char* root = std::getenv("GREENFOUND_POWERCAP_ROOT");
  return root && *root ? root : "/sys/class/powercap";
}

std::unique_ptr<Meter> open_rapl_meter(const std::string& root) {
  std::error_code error;
  if (!fs::is_directory(root, error)) return nullptr;
  std::vector<Zone> zones;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    const std::string zone_name = entry.path().filename().string();
    // "intel-rapl:N" or "intel-rapl:N:M"; "intel-rapl-mmio:*" repeats the package counter.
    if (zone_name.rfind("intel-rapl:", 0) != 0) continue;
    std::string name;
    if (!read_text(entry.path() / "name", name)) continue;
    const std::string socket = zone_name.substr(11, zone_name.find(':', 11) - 11);
    Domain domain;
    std::string device;
    if (name.rfind("package-", 0) == 0) {
      domain = Domain::kPackage;
      device = name;
    } else if (name == "dram") {
      domain = Domain::kDram;
      device = "dram-" + socket;
    } else {
      continue;
    }
    unsigned long long range = 0, first = 0;
    // energy_uj is root-only on kernels patched for CVE-2020-8694: unreadable means no RAPL.
    if (!read_counter(entry.path() / "max_energy_range_uj", range) || range == 0) continue;
    if (!read_counter(entry.path() / "energy_uj", first)) continue;
    zones.push_back({device, entry.path() / "energy_uj", domain, static_cast<double>(range),
                     static_cast<double>(first)});
  }
  if (zones.empty()) return nullptr;
  std::sort(zones.begin(), zones.end(), [](const Zone& a, const Zone& b) {
    return std::make_pair(a.domain, a.device) < std::make_pair(b.domain, b.device);
  });
  return std::make_unique<RaplMeter>(std::move(zones));
}

}  // namespace gf::energy
