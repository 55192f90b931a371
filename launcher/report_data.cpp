#include "launcher/report_data.hpp"

#include <filesystem>
#include <stdexcept>

#include "base/json_reader.hpp"

namespace gf::launcher {

namespace fs = std::filesystem;

RunData read_run(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": not a run folder (no such directory)");
  RunData run;
  run.dir = dir;
  run.name = fs::path(dir).lexically_normal().filename().string();
  if (run.name.empty() || run.name == ".") run.name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path root(dir);
  const std::string config = (root / "config.json").string();
  if (fs::exists(config)) run.config = train::parse_run_config(base::load_json_file(config), config);
  run.provenance = train::read_provenance((root / "provenance.json").string());
  run.metrics = train::read_metrics((root / "metrics.jsonl").string());
  run.energy_samples = energy::read_energy_csv((root / "energy.csv").string());
  run.energy = energy::read_energy_summary((root / "energy.json").string());
  for (const fs::path& probe_dir : {root, root / "probe"}) {
    run.results = eval::read_results((probe_dir / "results.json").string());
    if (run.results) break;
  }
  // A folder with none of them (a typo'd path, an empty folder) would be an empty report.
  bool any = run.config || run.energy || run.results || !run.metrics.empty();
  for (const char* name : {"provenance.json", "energy.csv"}) any = any || fs::exists(root / name);
  if (!any)
    throw std::runtime_error(dir + ": found none of config.json, provenance.json, metrics.jsonl, energy.csv, energy.json, "
                             "results.json, probe/results.json; expected a run folder, a probe folder or a sweep folder");
  return run;
}

}  // namespace gf::launcher
