#pragma once
// A powercap sysfs tree in a temporary folder, shaped like /sys/class/powercap on a
// one-socket Intel server, whose counters the test sets (atomically: temp file + rename, as
// a reader must never see a half-written value).
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace gf::energy::testing {

class FakePowercap {
 public:
  // Under `parent` (a folder every host of a multinode test sees, when /tmp is per host).
  explicit FakePowercap(uint64_t range_uj, const std::string& parent = std::filesystem::temp_directory_path().string())
      : dir_("powercap", parent), range_uj_(range_uj) {
    zone("intel-rapl:0", "package-0");
    zone("intel-rapl:0:0", "core");       // inside the package: not counted
    zone("intel-rapl:0:2", "dram");
    zone("intel-rapl:1", "psys");         // whole platform, overlaps: not counted
    zone("intel-rapl-mmio:0", "package-0");  // the package again through MMIO: not counted
  }
  FakePowercap(const FakePowercap&) = delete;
  FakePowercap& operator=(const FakePowercap&) = delete;

  const std::string& root() const { return root_; }

  // Sets a zone's counter to `total_uj` folded into the counter's range, as hardware does.
  void set(const std::string& zone_name, uint64_t total_uj) { write(zone_name, "energy_uj", total_uj % (range_uj_ + 1)); }

 private:
  void zone(const std::string& name, const std::string& label) {
    std::filesystem::create_directories(root_ + "/" + name);
    std::ofstream(root_ + "/" + name + "/name") << label << "\n";
    write(name, "max_energy_range_uj", range_uj_);
    write(name, "energy_uj", 0);
  }
  void write(const std::string& zone_name, const std::string& file, uint64_t value) {
    const std::string path = root_ + "/" + zone_name + "/" + file;
    {
      std::ofstream(path + ".tmp") << value << "\n";
    }
    std::filesystem::rename(path + ".tmp", path);
  }

  gf::test::TempDir dir_;
  std::string root_ = dir_.str();
  uint64_t range_uj_;
};

}  // namespace gf::energy::testing
