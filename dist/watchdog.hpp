#pragma once
// Collective watchdog: every collective is registered with its operation and step; one not
// finished within the timeout prints rank, host, operation and step and aborts the whole job
// (MPI_Abort), so no rank waits forever on a peer that died or hangs. When the process was
// told to stop (note_stop_signal) and a collective that was already running then still
// waits kStopGrace later, the watchdog says so at once: a launcher ending the job after a
// peer died (mpirun: SIGTERM, then SIGKILL a moment later) would otherwise leave no word of
// what this rank was waiting on.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "dist/world.hpp"

namespace gf::dist {

// Async-signal-safe: called from the process's SIGTERM/SIGUSR1 handler (train/stop_signal).
void note_stop_signal(int signal);

class Watchdog {
 public:
  using Ticket = uint64_t;

  Watchdog(World world, double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts watching a collective; end(ticket) when it finished. With `is_done`, the watchdog
  // also polls it and ends the entry itself once it returns true (device-side completion).
  Ticket begin(std::string operation, int64_t step, std::function<bool()> is_done = {});
  void end(Ticket ticket);

 private:
  struct Entry {
    std::string operation;
    int64_t step;
    std::chrono::steady_clock::time_point start;
    std::function<bool()> is_done;
  };

  void run();
  [[noreturn]] void fire(const Entry& entry);
  void report_stalled(const Entry& entry, double waited_s, int signal);

  World world_;
  double timeout_s_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<Ticket, Entry> entries_;
  Ticket next_ = 0;
  bool stop_ = false;
  bool stall_reported_ = false;
  std::thread thread_;
};

}  // namespace gf::dist
