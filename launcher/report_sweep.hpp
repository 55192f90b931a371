#pragma once
// The sweep view of `greenfound report SWEEP_DIR`: per task and averaged over tasks, AUROC
// with its bootstrap interval against each run's measured pretraining compute (FLOPs,
// device-hours, kWh, dollars; labelled when estimated), the Pareto frontier marked, the runs
// in a table sorted by cost, and the published cost estimates as reference lines.
#include <string>
#include <vector>

#include "launcher/sweep_results.hpp"

namespace gf::launcher {

// Frontier flags for (cost, quality) pairs: a point is on the frontier when every cheaper
// point (or an equally cheap one listed earlier) is strictly worse. Non-finite pairs are off it.
std::vector<bool> pareto_frontier(const std::vector<double>& cost, const std::vector<double>& quality);

std::string render_sweep_report(const std::string& sweep_dir, const std::vector<SweepRunResult>& runs);

}  // namespace gf::launcher
