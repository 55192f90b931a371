#pragma once
// Internal to slurm/: runs a command-line tool and captures what it says.
#include <string>
#include <vector>

namespace gf::slurm {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when the tool was killed by a signal
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up on $PATH) with stdin from /dev/null, capturing stdout and
// stderr. Throws only when the tool cannot be started at all.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace gf::slurm
