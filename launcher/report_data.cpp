#include "launcher/report_data.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gf::launcher {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& path, std::vector<std::string>& notes) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    notes.push_back(path.string() + ": unreadable JSON (" + e.what() + ")");
    return nullptr;
  }
}

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    // A run in progress may be mid-write: a torn last line is skipped, not an error.
    auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object()) records.push_back(std::move(record));
  }
  return records;
}

std::vector<EnergySample> read_energy_csv(const fs::path& path) {
  std::vector<EnergySample> samples;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return samples;  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (cells.size() < 8) continue;  // torn last row of a run in progress
    try {
      samples.push_back({std::stod(cells[0]), std::stoi(cells[1]), cells[2], cells[3], cells[4], cells[7],
                         std::stod(cells[5]), std::stod(cells[6])});
    } catch (const std::exception&) {
      continue;
    }
  }
  return samples;
}

}  // namespace

RunData read_run(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": not a run folder (no such directory)");
  RunData run;
  run.dir = dir;
  run.name = fs::path(dir).lexically_normal().filename().string();
  if (run.name.empty() || run.name == ".") run.name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path root(dir);
  run.config = read_json(root / "config.json", run.notes);
  run.provenance = read_json(root / "provenance.json", run.notes);
  run.metrics = read_jsonl(root / "metrics.jsonl");
  run.energy_samples = read_energy_csv(root / "energy.csv");
  run.energy = read_json(root / "energy.json", run.notes);
  for (const fs::path& probe_dir : {root, root / "probe"}) {
    if (!fs::exists(probe_dir / "results.json")) continue;
    run.results = read_json(probe_dir / "results.json", run.notes);
    break;
  }
  return run;
}

}  // namespace gf::launcher
