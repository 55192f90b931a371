#include "train/stop_signal.hpp"

#include <stdexcept>

#include "dist/watchdog.hpp"

namespace gf::train {

namespace {

volatile std::sig_atomic_t g_received = 0;

extern "C" void record_signal(int signal) {
  g_received = signal;
  dist::note_stop_signal(signal);  // a collective stuck past the signal is then reported
}

}  // namespace

StopSignalGuard::StopSignalGuard() {
  g_received = 0;
  struct sigaction action {};
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR1, &action, &previous_usr1_) != 0 || sigaction(SIGTERM, &action, &previous_term_) != 0)
    throw std::runtime_error("pretrain: cannot install the SIGUSR1/SIGTERM handlers");
}

StopSignalGuard::~StopSignalGuard() {
  sigaction(SIGUSR1, &previous_usr1_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

int StopSignalGuard::received() const { return g_received; }

}  // namespace gf::train
