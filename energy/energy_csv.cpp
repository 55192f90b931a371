#include "energy/energy_csv.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "base/text.hpp"

namespace gf::energy {
namespace {

constexpr const char* kHeader = "time,rank,host,device,domain,joules,watts,label";
constexpr size_t kColumns = 8;

// The whole field as a number, or false.
bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  size_t used = 0;
  try {
    out = std::stod(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == text.size();
}

bool parse_row(const std::string& line, EnergySample& sample) {
  const std::vector<std::string> f = base::split(line, ',');
  if (f.size() != kColumns) return false;
  double rank = 0;
  if (!parse_number(f[0], sample.time) || !parse_number(f[1], rank) || !parse_number(f[5], sample.joules) ||
      !parse_number(f[6], sample.watts))
    return false;
  // A rank is a whole number an int holds (NaN, 1e300 or -1 is no rank: casting it is undefined).
  if (!(rank >= 0 && rank <= std::numeric_limits<int>::max() && rank == std::floor(rank))) return false;
  sample.rank = static_cast<int>(rank);
  sample.host = f[2];
  sample.device = f[3];
  sample.domain = f[4];
  sample.label = f[7];
  return true;
}

}  // namespace

std::string energy_csv_header() { return std::string(kHeader) + "\n"; }

std::string energy_csv_row(const EnergySample& s) {
  std::ostringstream row;
  row << std::fixed << std::setprecision(3) << s.time << ',' << s.rank << ',' << s.host << ',' << s.device << ','
      << s.domain << ',' << s.joules << ',' << std::setprecision(2) << s.watts << ',' << s.label << '\n';
  return row.str();
}

EnergyCsv read_energy_csv(const std::string& path) {
  EnergyCsv csv;
  if (!std::filesystem::exists(path)) return csv;
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  std::string line;
  if (!std::getline(in, line)) return csv;
  if (line != kHeader)
    throw std::runtime_error(path + ": header: found \"" + line + "\", expected \"" + kHeader + "\" (an energy.csv)");
  while (std::getline(in, line)) {
    EnergySample sample;
    if (parse_row(line, sample))
      csv.samples.push_back(std::move(sample));
    else if (!line.empty())
      ++csv.torn_rows;
  }
  return csv;
}

}  // namespace gf::energy
