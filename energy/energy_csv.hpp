#pragma once
// RUN_DIR/energy.csv: one row per meter reading, appended by every rank's sampler thread
// (one write per sample, so ranks never interleave inside a row). Joules are cumulative per
// (rank, host, device, domain) since that stage's start(); watts are the mean over the
// sample interval. `status` and `report` read it back through read_energy_csv.
#include <string>
#include <vector>

namespace gf::energy {

struct EnergySample {
  double time = 0;  // unix seconds
  int rank = 0;
  std::string host, device, domain;  // domain: domain_name()
  double joules = 0, watts = 0;
  std::string label;  // label_name()
};

// "time,rank,host,device,domain,joules,watts,label\n"
std::string energy_csv_header();
std::string energy_csv_row(const EnergySample& sample);

struct EnergyCsv {
  std::vector<EnergySample> samples;
  // Rows cut short by a process that died mid-write (a requeued run appends after them).
  int torn_rows = 0;
};
// The samples of an energy.csv (none when the file is absent). A header other than
// energy_csv_header() is an error naming the file.
EnergyCsv read_energy_csv(const std::string& path);

}  // namespace gf::energy
