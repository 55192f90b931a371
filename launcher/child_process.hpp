#pragma once
// Child processes of the CLI: `launch` (mpirun/srun), `submit` (the ranks' command line) and
// `demo` (each stage as the command a user would type) run this very binary or a launcher.
#include <functional>
#include <string>
#include <vector>

namespace gf::launcher {

// The path of the running greenfound binary (/proc/self/exe resolved).
std::string self_executable();

// Runs argv (argv[0] looked up on PATH) and returns its exit status (128 + signal when
// killed). SIGINT, SIGTERM and SIGUSR1 sent to this process are passed on to the child.
// With `on_stderr_line`, the child's stderr goes through a pipe: copied to ours unchanged
// as it comes, and each line handed to the callback. Reading stops when the child exits
// (anything it left holding the pipe does not keep us waiting).
int run_and_wait(const std::vector<std::string>& argv,
                 const std::function<void(const std::string& line)>& on_stderr_line = {});

}  // namespace gf::launcher
