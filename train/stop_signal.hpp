#pragma once
// Preemption: SIGUSR1 (SLURM's --signal) and SIGTERM set a flag the training loop reads at
// every step boundary; the previous handlers come back when the guard ends.
#include <csignal>

namespace gf::train {

class StopSignalGuard {
 public:
  StopSignalGuard();   // installs the handlers and clears the flag
  ~StopSignalGuard();  // restores the previous handlers
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

  // The signal received since construction, 0 if none.
  int received() const;

 private:
  struct sigaction previous_usr1_ {};
  struct sigaction previous_term_ {};
};

}  // namespace gf::train
