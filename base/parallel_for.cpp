#include "base/parallel_for.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace gf::base {

void parallel_for(int64_t count, int threads, const std::function<void(int64_t)>& body) {
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (int64_t i = next++; i < count; i = next++) {
      try {
        body(i);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = count;
      }
    }
  };
  std::vector<std::thread> pool;
  const int64_t wanted = std::min<int64_t>(threads, count);
  try {
    for (int64_t t = 1; t < wanted; ++t) pool.emplace_back(worker);
  } catch (const std::system_error&) {
    // No more threads to be had (a process or memory limit): the ones started, and this one,
    // still take every index; fewer threads is slower, not wrong.
  }
  worker();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

int max_threads() { return std::max(16, 4 * static_cast<int>(std::thread::hardware_concurrency())); }

int check_thread_count(int count, const std::string& what) {
  if (count < 0 || count > max_threads())
    throw std::runtime_error(what + ": found " + std::to_string(count) + ", expected 0 to " + std::to_string(max_threads()) +
                             " (4x this machine's " + std::to_string(std::thread::hardware_concurrency()) +
                             " hardware threads, at least 16)");
  return count;
}

int resolve_threads(int threads, int processes_on_node, const std::string& what) {
  if (threads > 0) return check_thread_count(threads, what);
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp);
    if (n > 0) return check_thread_count(n, "OMP_NUM_THREADS");
  }
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, processes_on_node));
}

}  // namespace gf::base
