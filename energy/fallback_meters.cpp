// Estimated meters for machines where neither RAPL nor NVML can be read: this process's CPU
// time at a per-core share of the package TDP, and GPU wall time at the board power.
#include <sys/resource.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "energy/meters.hpp"

namespace gf::energy {
namespace {

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * t.tv_usec; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

class CpuTimeMeter : public Meter {
 public:
  explicit CpuTimeMeter(double watts_per_core) : watts_per_core_(watts_per_core), start_(process_cpu_seconds()) {}
  std::vector<MeterReading> read() override {
    return {{"cpu-process", "cpu-process", Domain::kPackage, (process_cpu_seconds() - start_) * watts_per_core_,
             Label::kEstimated}};
  }

 private:
  double watts_per_core_;
  double start_;
};

class GpuTimeMeter : public Meter {
 public:
  GpuTimeMeter(std::vector<std::string> devices, double board_power_w)
      : devices_(std::move(devices)), board_power_w_(board_power_w), start_(std::chrono::steady_clock::now()) {}
  std::vector<MeterReading> read() override {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::vector<MeterReading> readings;
    for (const auto& device : devices_)
      readings.push_back({"gpu-" + device, "cuda-visible-" + device, Domain::kGpu, seconds * board_power_w_,
                          Label::kEstimated});
    return readings;
  }

 private:
  std::vector<std::string> devices_;
  double board_power_w_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

std::unique_ptr<Meter> open_cpu_time_meter(double tdp_w, int cores) {
  if (cores <= 0) cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<CpuTimeMeter>(tdp_w / cores);
}

std::unique_ptr<Meter> open_gpu_time_meter(const std::vector<std::string>& devices, double board_power_w) {
  return std::make_unique<GpuTimeMeter>(devices, board_power_w);
}

}  // namespace gf::energy
