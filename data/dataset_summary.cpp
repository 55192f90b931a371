// `greenfound inspect DATASET`: what a packed dataset holds, with every checksum verified.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "base/sha256.hpp"
#include "data/dataset.hpp"

namespace gf::data {
namespace {

std::string megabytes(int64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

void print_label(const Dataset& ds, const LabelColumn& column, std::ostream& out) {
  out << "  " << column.name << " (" << to_string(column.type) << "): ";
  if (column.type == LabelType::kFloat) {
    const std::vector<double> values = ds.float_labels(column.name);
    int64_t present = 0;
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (double v : values) {
      if (std::isnan(v)) continue;
      ++present;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
    }
    out << "n=" << present << ", missing " << (static_cast<int64_t>(values.size()) - present);
    if (present > 0) out << ", min " << lo << ", mean " << sum / present << ", max " << hi;
    out << "\n";
    return;
  }
  std::map<int64_t, int64_t> counts;
  for (int64_t v : ds.int_labels(column.name)) ++counts[v];
  bool first = true;
  for (const auto& [value, n] : counts) {
    if (value < 0) continue;
    out << (first ? "" : ", ");
    first = false;
    if (column.type == LabelType::kCategory && value < static_cast<int64_t>(column.categories.size())) {
      out << column.categories[static_cast<size_t>(value)] << "=" << value;
    } else if (column.type == LabelType::kYesNo) {
      out << (value ? "yes" : "no");
    } else {
      out << value;
    }
    out << ": " << n;
  }
  out << (first ? "" : ", ") << "missing: " << (counts.count(-1) ? counts[-1] : 0) << "\n";
}

}  // namespace

void print_dataset_summary(const std::string& dir, std::ostream& out) {
  const Manifest m = read_manifest(dir);
  out << "dataset: " << dir << " (format " << m.format_version << ")\n";
  out << "shards:\n";
  std::string first_error;
  for (const auto& s : m.shards) {
    const std::string path = (std::filesystem::path(dir) / s.file).string();
    std::string status = "sha256 ok";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      status = "MISSING";
      if (first_error.empty()) first_error = path + ": found no file, expected the shard listed in manifest.json";
    } else {
      const std::string sha = base::sha256_file(path);
      if (sha != s.sha256) {
        status = "CORRUPT (sha256 " + sha.substr(0, 12) + ".., expected " + s.sha256.substr(0, 12) + "..)";
        if (first_error.empty()) {
          first_error = path + ": sha256: found " + sha.substr(0, 12) + ".., expected " + s.sha256.substr(0, 12) +
                        ".. (corrupt or modified shard; re-run greenfound pack)";
        }
      }
    }
    out << "  " << s.file << "  " << s.count << " images  " << megabytes(s.bytes) << "  " << status << "\n";
  }
  if (!first_error.empty()) {
    out.flush();
    throw std::runtime_error(first_error);
  }
  // Counts come from the shards (open checks the manifest's against them), never as written.
  const auto ds = Dataset::open(dir, Verify::kSizes);
  out << "images: " << ds->size() << " (" << m.resolution << "x" << m.resolution << ", " << to_string(m.encoding) << ")\n";
  std::map<std::string, int64_t> sources;
  for (const auto& source : ds->sources()) ++sources[source];
  if (!sources.empty() && !(sources.size() == 1 && sources.begin()->first.empty())) {
    out << "sources:";
    for (const auto& [name, n] : sources) out << " " << name << " " << n;
    out << "\n";
  }
  if (!ds->has_split()) {
    out << "split: none (train = all)\n";
  } else {
    out << "split: by " << m.split.by << ", test fraction " << m.split.test_fraction << ", seed " << m.split.seed
        << ": train " << ds->split_indices("train").size() << ", test " << ds->split_indices("test").size() << "\n";
  }
  out << "labels:" << (m.labels.empty() ? " none" : "") << "\n";
  for (const auto& column : m.labels) print_label(*ds, column, out);
  out << "checksums: all " << m.shards.size() << " shards ok\n";
}

}  // namespace gf::data
