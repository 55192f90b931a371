#pragma once
// One line saying why a multi-rank job failed, from what `launch` sees on the launcher's
// stderr: mpirun's and srun's reports (which process died on which node, which node was lost)
// and the ranks' collective watchdog (dist/watchdog.hpp: which operation at which step was
// left waiting). Those reports are spread over boxes of text from several processes; the
// line names the failed host and ranks and what the rest of the job was doing.
#include <string>
#include <utility>
#include <vector>

namespace gf::launcher {

class JobFailure {
 public:
  // The hosts and slots mpirun was given, in order (ranks fill them in order), or none.
  explicit JobFailure(std::vector<std::pair<std::string, int>> host_slots = {});

  void add_line(const std::string& line);
  // "" when no line said anything this class understands.
  std::string summary() const;

 private:
  struct Stall {
    std::string operation, step, host, rank, waited;
  };
  std::string ranks_of(const std::string& host) const;

  std::vector<std::pair<std::string, int>> host_slots_;
  std::string failed_host_, failed_ranks_, what_;
  std::vector<Stall> stalls_;
};

}  // namespace gf::launcher
