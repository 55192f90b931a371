// Cost of energy accounting next to the work it accounts for: one sampler tick (RAPL zones of
// a fake powercap tree and the CPU-time meter, read once each) and one set_phase call, against a
// training-like step (matmuls) timed in the same run with and without a 1 Hz tracker.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "energy/meters.hpp"
#include "energy/tracker.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string fake_powercap() {
  char pattern[] = "/tmp/gf-bench-powercap-XXXXXX";
  const std::string root = mkdtemp(pattern);
  for (const auto& [zone, name] : {std::pair<const char*, const char*>{"intel-rapl:0", "package-0"},
                                   {"intel-rapl:0:2", "dram"}}) {
    std::filesystem::create_directories(root + "/" + zone);
    std::ofstream(root + "/" + zone + "/name") << name << "\n";
    std::ofstream(root + "/" + zone + "/energy_uj") << 12345 << "\n";
    std::ofstream(root + "/" + zone + "/max_energy_range_uj") << 262143328850ULL << "\n";
  }
  return root;
}

double step(const at::Tensor& a, const at::Tensor& b, gf::energy::EnergyTracker* tracker) {
  using gf::energy::Phase;
  const auto start = Clock::now();
  const Phase phases[] = {Phase::kData, Phase::kTeacherForward, Phase::kStudentForwardBackward, Phase::kAllreduce,
                          Phase::kOptimizer, Phase::kIdle, Phase::kData, Phase::kIdle};
  at::Tensor c = b;
  for (int i = 0; i < 8; ++i) {
    if (tracker) tracker->set_phase(phases[i]);
    c = at::mm(a, c).tanh_();
  }
  return seconds_since(start);
}

}  // namespace

int main() {
  at::set_num_threads(1);
  const std::string root = fake_powercap();
  setenv("GREENFOUND_POWERCAP_ROOT", root.c_str(), 1);
  setenv("GREENFOUND_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);

  // One tick's meter reads.
  auto rapl = gf::energy::open_rapl_meter(root);
  auto cpu = gf::energy::open_cpu_time_meter(150, 0);
  const int reads = 2000;
  auto start = Clock::now();
  for (int i = 0; i < reads; ++i) {
    rapl->read();
    cpu->read();
  }
  const double read_s = seconds_since(start) / reads;

  const std::string run_dir = root + "/run";
  gf::energy::EnergyTracker tracker(gf::energy::EnergyOptions{}, gf::dist::World{}, nullptr, run_dir);
  const int marks = 200000;
  start = Clock::now();
  for (int i = 0; i < marks; ++i) tracker.set_phase(i % 2 ? gf::energy::Phase::kData : gf::energy::Phase::kIdle);
  const double mark_s = seconds_since(start) / marks;

  const at::Tensor a = at::randn({384, 384}) * 0.05, b = at::randn({384, 384});
  const int steps = 60;
  double plain = 0, tracked = 0;
  step(a, b, nullptr);
  tracker.start();
  for (int i = 0; i < steps; ++i) {  // interleaved, so drift in machine load hits both alike
    plain += step(a, b, nullptr);
    tracked += step(a, b, &tracker);
  }
  tracker.finish(0, 0);
  plain /= steps;
  tracked /= steps;
  std::filesystem::remove_all(root);

  std::printf("energy sampler tick (meter reads: RAPL package+dram, CPU time): %.1f us; at 1 Hz = %.4f%% of wall time\n",
              read_s * 1e6, read_s * 100.0);
  std::printf("set_phase: %.0f ns; 8 marks per step = %.2f us\n", mark_s * 1e9, 8 * mark_s * 1e6);
  std::printf("step (8 x 384x384 matmul, 1 thread): %.3f ms without tracker, %.3f ms with a 1 Hz tracker "
              "(difference %.2f%%, noise included)\n",
              plain * 1e3, tracked * 1e3, 100.0 * (tracked - plain) / plain);
  std::printf("accounting cost per step: %.4f%% (8 marks + 1 Hz ticks)\n",
              100.0 * (8 * mark_s + read_s * plain) / plain);
  return 0;
}
