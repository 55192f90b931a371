#pragma once
#include <string>

namespace gf::launcher {
// "greenfound: " on a single process; "greenfound[rank R]: " when started as one of several
// ranks (Open MPI or SLURM variables), so every rank's errors are told apart on the terminal.
std::string rank_prefix();
}  // namespace gf::launcher
