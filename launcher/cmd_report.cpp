// `greenfound report RUN_DIR... [--out report.html]`: one self-contained HTML page for one
// run or several side by side; works on runs still in progress. A sweep folder gets the
// sweep view (launcher/report_sweep.hpp).
#include <filesystem>
#include <iostream>

#include "base/atomic_file.hpp"
#include "base/output_paths.hpp"
#include "launcher/commands.hpp"
#include "launcher/report_html.hpp"
#include "launcher/report_sweep.hpp"

namespace gf::launcher {

namespace fs = std::filesystem;

void setup_report(CLI::App& sub) {
  struct Args {
    std::vector<std::string> runs;
    std::string out = "report.html";
    int samples = 4;
  };
  auto args = std::make_shared<Args>();
  sub.add_option("runs", args->runs, "Run folders, or one sweep folder (config.json, provenance.json, metrics.jsonl, energy.*, probe/results.json)")->required();
  sub.add_option("--out", args->out, "HTML file to write")->capture_default_str();
  sub.add_option("--samples", args->samples, "Images in the clean/corrupted sample grid (0 = none)")->capture_default_str()->check(CLI::Range(0, 16));
  sub.callback([args] {
    std::vector<base::InputPath> inputs;
    for (const auto& dir : args->runs) {
      inputs.push_back({{"run folder", dir}});
      // A report is often kept in its run folder; any other file already there is the run's.
      if (fs::exists(args->out) && fs::path(args->out).extension() != ".html" && base::lies_inside(args->out, dir))
        throw std::runtime_error("report: --out " + args->out + " is a file of the input run folder " + dir +
                                 "; expected a new file or an earlier report (.html)");
    }
    base::refuse_overwriting_input("report", {"--out", args->out}, base::OutputKind::kFile, inputs);
    if (args->runs.size() == 1 && is_sweep_dir(args->runs.front())) {  // the sweep view
      const auto runs = read_sweep_results(args->runs.front());
      base::write_file_atomic(args->out, render_sweep_report(args->runs.front(), runs));
      std::cout << "report: wrote " << args->out << " (sweep of " << runs.size() << " runs)\n";
      return;
    }
    std::vector<RunData> runs;
    for (const auto& dir : args->runs) runs.push_back(read_run(dir));
    base::write_file_atomic(args->out, render_report(runs, {args->samples}));
    std::cout << "report: wrote " << args->out << " (" << runs.size() << " run" << (runs.size() == 1 ? "" : "s") << ")\n";
  });
}

}  // namespace gf::launcher
