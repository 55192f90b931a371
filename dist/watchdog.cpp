#include "dist/watchdog.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace gf::dist {
namespace {

// How often entries are checked: fine enough that a 2 s timeout fires within ~2.05 s.
constexpr std::chrono::milliseconds kPollPeriod{50};

}  // namespace

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
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, kPollPeriod);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.is_done && it->second.is_done()) {
        it = entries_.erase(it);
        continue;
      }
      if (now - it->second.start > timeout) fire(it->second);
      ++it;
    }
  }
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
