#include "dist/watchdog.hpp"

#include <atomic>
#include <cstdio>
#include <optional>
#include <cstdlib>
#include <stdexcept>

namespace gf::dist {
namespace {

// How often entries are checked: fine enough that a 2 s timeout fires within ~2.05 s.
constexpr std::chrono::milliseconds kPollPeriod{50};
// A collective still waiting this long after a stop signal is reported: healthy ones finish
// in milliseconds, and mpirun sends SIGKILL 1 s after SIGTERM (odls_base_sigkill_timeout;
// `launch --hosts` makes it 2 s).
constexpr std::chrono::milliseconds kStopGrace{400};

std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "note_stop_signal must be async-signal-safe");

}  // namespace

void note_stop_signal(int signal) { g_stop_signal.store(signal, std::memory_order_relaxed); }

Watchdog::Watchdog(World world, double timeout_s) : world_(std::move(world)), timeout_s_(timeout_s) {
  if (!(timeout_s > 0)) {
    throw std::runtime_error("dist.timeout_s: found " + std::to_string(timeout_s) + ", expected a positive number of seconds");
  }
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Watchdog::Ticket Watchdog::begin(std::string operation, int64_t step, std::function<bool()> is_done) {
  std::lock_guard<std::mutex> lock(mutex_);
  Ticket ticket = next_++;
  entries_.emplace(ticket, Entry{std::move(operation), step, std::chrono::steady_clock::now(), std::move(is_done)});
  return ticket;
}

void Watchdog::end(Ticket ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(ticket);
}

void Watchdog::run() {
  const auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(timeout_s_));
  std::optional<std::chrono::steady_clock::time_point> signalled;  // when a stop signal was first seen
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, kPollPeriod);
    const auto now = std::chrono::steady_clock::now();
    const int signal = g_stop_signal.load(std::memory_order_relaxed);
    if (signal != 0 && !signalled) signalled = now;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.is_done && it->second.is_done()) {
        it = entries_.erase(it);
        continue;
      }
      if (now - it->second.start > timeout) fire(it->second);
      // Only one already running at the signal: a barrier entered afterwards may rightly wait
      // for rank 0 writing the preemption checkpoint.
      if (signalled && !stall_reported_ && it->second.start < *signalled && now - *signalled > kStopGrace) {
        report_stalled(it->second, std::chrono::duration<double>(now - it->second.start).count(), signal);
        stall_reported_ = true;
      }
      ++it;
    }
  }
}

void Watchdog::report_stalled(const Entry& entry, double waited_s, int signal) {
  const std::string step = entry.step >= 0 ? std::to_string(entry.step) : std::string("none");
  std::fprintf(stderr,
               "greenfound[rank %d]: dist watchdog: %s on rank %d of %d (host %s) still waiting after %.1f s, "
               "past signal %d (step %s): a peer rank may have died or hang\n",
               world_.rank, entry.operation.c_str(), world_.rank, world_.size, world_.host.c_str(), waited_s, signal,
               step.c_str());
  std::fflush(stderr);
}

void Watchdog::fire(const Entry& entry) {
  const std::string step = entry.step >= 0 ? std::to_string(entry.step) : std::string("none");
  std::fprintf(stderr,
               "greenfound[rank %d]: error: dist watchdog: %s on rank %d of %d (host %s) did not finish "
               "within %g s (step %s): a peer rank died or hangs; aborting the job\n",
               world_.rank, entry.operation.c_str(), world_.rank, world_.size, world_.host.c_str(), timeout_s_,
               step.c_str());
  std::fflush(stderr);
  abort_job(EXIT_FAILURE);
}

}  // namespace gf::dist
