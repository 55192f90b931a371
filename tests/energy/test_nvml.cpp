// NVML through dlopen of tests/energy/fake_nvml.c (GREENFOUND_NVML_LIB): per-GPU selection
// by local rank and CUDA_VISIBLE_DEVICES, the total-energy counter, power sampling, and the
// estimated fallback when no NVML can be loaded.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "energy/cost.hpp"
#include "energy/meters.hpp"
#include "energy/tracker.hpp"
#include "tests/energy/energy_test_support.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace gf::energy {
namespace {

using gf::test::lines_containing;
using gf::test::wait_until;

dist::World world_of(int local_rank, int local_size) { return testing::world_of(local_rank, local_size, "gpu-node"); }

class Nvml : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("GREENFOUND_NVML_LIB", GF_FAKE_NVML, 1);
    setenv("GREENFOUND_POWERCAP_ROOT", "/nonexistent/powercap", 1);
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("FAKE_NVML_NO_ENERGY");
    // Our own handle on the fake keeps it loaded (and its query counters alive) while
    // meters open and close it.
    fake_ = dlopen(GF_FAKE_NVML, RTLD_NOW | RTLD_LOCAL);
    ASSERT_TRUE(fake_) << dlerror();
    queries_ = reinterpret_cast<int (*)(unsigned int)>(dlsym(fake_, "fake_nvml_energy_queries"));
    ASSERT_TRUE(queries_);
  }
  void TearDown() override { dlclose(fake_); }

  void* fake_ = nullptr;
  int (*queries_)(unsigned int) = nullptr;
};

TEST_F(Nvml, ProbeSeesTheFakeGpus) {
  const auto probe = probe_nvml();
  EXPECT_TRUE(probe.loaded) << probe.error;
  EXPECT_EQ(probe.count, 4);
}

TEST_F(Nvml, SelectionFollowsLocalRankAndCudaVisibleDevices) {
  EnergyOptions options;
  EXPECT_EQ(select_gpus(options, 0, 4), std::vector<std::string>{"0"});
  EXPECT_EQ(select_gpus(options, 3, 4), std::vector<std::string>{"3"});
  setenv("CUDA_VISIBLE_DEVICES", "3,1", 1);
  EXPECT_EQ(select_gpus(options, 0, 4), std::vector<std::string>{"3"});
  EXPECT_EQ(select_gpus(options, 1, 4), std::vector<std::string>{"1"});
  EXPECT_EQ(select_gpus(options, 2, 4), std::vector<std::string>{"3"});  // oversubscribed: shared GPU
  options.gpus_per_rank = 2;
  EXPECT_EQ(select_gpus(options, 0, 4), (std::vector<std::string>{"3", "1"}));
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  EXPECT_TRUE(select_gpus(options, 0, 4).empty());
  options.gpu_ids = {2};
  EXPECT_EQ(select_gpus(options, 0, 4), std::vector<std::string>{"2"});
  unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_TRUE(select_gpus(EnergyOptions{}, 0, 0).empty());  // no NVML, nothing declared: CPU run
}

TEST_F(Nvml, MeterReadsOnlyTheSelectedGpuByIndexAndByUuid) {
  std::string why, name;
  auto meter = open_nvml_meter({"1"}, &why, &name);
  ASSERT_TRUE(meter) << why;
  EXPECT_EQ(name, "NVIDIA A100-SXM4-80GB");
  const int before[4] = {queries_(0), queries_(1), queries_(2), queries_(3)};
  const auto readings = meter->read();
  ASSERT_EQ(readings.size(), 1u);
  EXPECT_EQ(readings[0].device, "gpu1");
  EXPECT_EQ(readings[0].id, "GPU-fake-0001");
  EXPECT_EQ(readings[0].domain, Domain::kGpu);
  EXPECT_EQ(readings[0].label, Label::kMeasured);
  EXPECT_EQ(queries_(1), before[1] + 1);
  EXPECT_EQ(queries_(0), before[0]);
  EXPECT_EQ(queries_(2), before[2]);
  EXPECT_EQ(queries_(3), before[3]);

  auto by_uuid = open_nvml_meter({"GPU-fake-0002"}, &why, &name);
  ASSERT_TRUE(by_uuid) << why;
  EXPECT_EQ(by_uuid->read()[0].device, "gpu2");
  EXPECT_FALSE(open_nvml_meter({"GPU-no-such"}, &why, &name));
  EXPECT_NE(why.find("GPU-no-such"), std::string::npos) << why;
}

TEST_F(Nvml, TrackerUsesTheEnergyCounterOfItsGpu) {
  setenv("CUDA_VISIBLE_DEVICES", "0,2", 1);
  const gf::test::TempDir dir("energy-nvml");
  const std::string run_dir = dir.str();
  EnergyOptions options;
  options.sample_hz = 20;
  EnergyTracker tracker(options, world_of(1, 2), nullptr, run_dir);  // local rank 1 → GPU 2: 300 W
  EXPECT_EQ(tracker.local_labels()[2], Label::kMeasured);
  EXPECT_EQ(tracker.local_labels()[0], Label::kEstimated);  // no RAPL: CPU time estimate
  const int counter_reads = queries_(2);
  tracker.start();
  EXPECT_TRUE(wait_until([&] { return queries_(2) > counter_reads + 3; })) << "the sampler did not read the counter";
  const auto summary = tracker.finish(100, 0);
  EXPECT_EQ(summary.gpus, 1);
  EXPECT_NEAR(summary.domains[2].joules, 300.0 * summary.duration_s, 0.01 * 300.0 * summary.duration_s);
  EXPECT_EQ(summary.domains[2].label, Label::kMeasured);
  EXPECT_EQ(summary.gpu_name, "NVIDIA A100-SXM4-80GB");
  // Priced from the table row that NVML's name matches.
  EXPECT_DOUBLE_EQ(summary.device_price_per_hour, require_gpu(default_gpu_table(), "A100").price_per_hour);
  EXPECT_NEAR(summary.device_hours, summary.duration_s / 3600.0, 1e-12);

  std::ifstream csv(run_dir + "/energy.csv");
  std::string line;
  bool gpu_row = false;
  while (std::getline(csv, line))
    if (line.find(",gpu2,gpu,") != std::string::npos) gpu_row = true;
  EXPECT_TRUE(gpu_row);
}

TEST_F(Nvml, GpuWithoutCounterIsPowerSampled) {
  setenv("FAKE_NVML_NO_ENERGY", "1", 1);
  const gf::test::TempDir dir("energy-nvml");
  const std::string run_dir = dir.str();
  EnergyOptions options;
  options.sample_hz = 20;
  options.gpu_ids = {3};  // 400 W
  EnergyTracker tracker(options, world_of(0, 1), nullptr, run_dir);
  tracker.start();
  // Power sampling integrates between samples: let the sampler take a few.
  EXPECT_TRUE(wait_until([&] { return lines_containing(run_dir + "/energy.csv", ",gpu3,gpu,") >= 4; }));
  const auto summary = tracker.finish(0, 0);
  EXPECT_NEAR(summary.domains[2].joules, 400.0 * summary.duration_s, 0.01 * 400.0 * summary.duration_s);
  EXPECT_EQ(summary.domains[2].label, Label::kMeasured);
}

TEST_F(Nvml, WithoutNvmlTheDeclaredGpuIsEstimated) {
  setenv("GREENFOUND_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
  const gf::test::TempDir dir("energy-nvml");
  const std::string run_dir = dir.str();
  EnergyOptions options;
  options.sample_hz = 20;
  options.gpus_per_rank = 1;
  options.gpu = "H100";  // 700 W board power from the table
  EnergyTracker tracker(options, world_of(0, 1), nullptr, run_dir);
  EXPECT_EQ(tracker.local_labels()[2], Label::kEstimated);
  tracker.start();
  EXPECT_TRUE(wait_until([&] { return lines_containing(run_dir + "/energy.csv", ",gpu,") >= 3; }));
  const auto summary = tracker.finish(0, 0);
  EXPECT_NEAR(summary.domains[2].joules, 700.0 * summary.duration_s, 0.01 * 700.0 * summary.duration_s);
  EXPECT_EQ(summary.domains[2].label, Label::kEstimated);
  EXPECT_EQ(summary.domains[0].label, Label::kEstimated);
  ASSERT_FALSE(summary.notes.empty());
  // energy.json read back through its typed reader.
  const auto written = read_energy_summary(run_dir + "/energy.json");
  ASSERT_TRUE(written);
  EXPECT_EQ(written->domains[2].label, Label::kEstimated);
  EXPECT_EQ(written->domains[0].label, Label::kEstimated);
  EXPECT_EQ(written->domains[1].label, Label::kUnavailable);
}

}  // namespace
}  // namespace gf::energy
