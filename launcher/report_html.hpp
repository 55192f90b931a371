#pragma once
// The self-contained HTML page of `greenfound report`: provenance, training curves,
// throughput, energy, the bill, probe results and the student's corrupted views, for one run
// or several side by side.
#include <string>
#include <vector>

#include "launcher/report_data.hpp"

namespace gf::launcher {

struct ReportOptions {
  int sample_images = 4;  // columns of the clean / corrupted sample grid (0 = none)
};

std::string render_report(const std::vector<RunData>& runs, const ReportOptions& options);
// The page's stylesheet, shared by the sweep view (launcher/report_sweep.hpp).
const char* report_css();

// PNG (base64) of `count` images of the run's dataset above the views the student gets
// (pixel noise + replaced patch tokens), drawn by the run's own objective; "" with `why`
// set when the run's config or dataset is not available.
std::string sample_grid_png_base64(const RunData& run, int count, std::string* why);

}  // namespace gf::launcher
