// RAPL through a fake powercap tree: zone selection, wrap-around, and a tracker sampling
// counters that a thread advances at known rates.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "energy/meters.hpp"
#include "energy/tracker.hpp"
#include "tests/energy/energy_test_support.hpp"
#include "tests/energy/fake_powercap.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace gf::energy {
namespace {

using testing::FakePowercap;

double joules_of(const std::vector<MeterReading>& readings, const std::string& device) {
  for (const auto& r : readings)
    if (r.device == device) return r.joules;
  ADD_FAILURE() << "no reading for " << device;
  return -1;
}

using gf::test::lines_containing;
using gf::test::wait_until;

dist::World world_of(int local_rank, int local_size) { return testing::world_of(local_rank, local_size, "node-a"); }

TEST(Rapl, CountsPackageAndDramOnlyAndUnwrapsTheCounter) {
  FakePowercap tree(1'000'000);  // a 1 J range: wraps after 1,000,000 uJ
  auto meter = open_rapl_meter(tree.root());
  ASSERT_TRUE(meter);
  auto readings = meter->read();
  ASSERT_EQ(readings.size(), 2u) << "core, psys and the mmio package must not be counted";
  EXPECT_EQ(readings[0].device, "package-0");
  EXPECT_EQ(readings[0].domain, Domain::kPackage);
  EXPECT_EQ(readings[1].device, "dram-0");
  EXPECT_EQ(readings[1].domain, Domain::kDram);
  EXPECT_EQ(readings[0].label, Label::kMeasured);

  // 0.9 J, then past the range: 1.5 J in total, read as 0.5 J after the wrap.
  tree.set("intel-rapl:0", 900'000);
  tree.set("intel-rapl:0:2", 100'000);
  readings = meter->read();
  EXPECT_NEAR(joules_of(readings, "package-0"), 0.9, 1e-9);
  tree.set("intel-rapl:0", 1'500'000);
  readings = meter->read();
  EXPECT_NEAR(joules_of(readings, "package-0"), 1.5, 1e-5);
  EXPECT_NEAR(joules_of(readings, "dram-0"), 0.1, 1e-9);
  // A second wrap.
  tree.set("intel-rapl:0", 2'250'000);
  EXPECT_NEAR(joules_of(meter->read(), "package-0"), 2.25, 1e-5);
}

TEST(Rapl, UnreadableOrMissingTreeGivesNoMeter) {
  EXPECT_FALSE(open_rapl_meter("/nonexistent/powercap"));
  const gf::test::TempDir empty("powercap-empty");
  EXPECT_FALSE(open_rapl_meter(empty.str()));
}

// Advances package and DRAM counters at fixed rates from its construction until stop(), which
// writes the final values and returns the package joules they hold: the known truth, whatever
// the scheduling delays of this thread were in between.
class CounterThread {
 public:
  CounterThread(FakePowercap& tree, double package_w, double dram_w)
      : tree_(tree), package_w_(package_w), dram_w_(dram_w), start_(std::chrono::steady_clock::now()) {
    thread_ = std::thread([this] {
      while (!stop_) {
        write(seconds());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~CounterThread() { stop(); }

  double stop() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
      final_s_ = seconds();
      write(final_s_);
    }
    return static_cast<double>(static_cast<uint64_t>(package_w_ * final_s_ * 1e6)) * 1e-6;
  }
  double final_dram_joules() const { return static_cast<double>(static_cast<uint64_t>(dram_w_ * final_s_ * 1e6)) * 1e-6; }

 private:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  void write(double s) {
    tree_.set("intel-rapl:0", static_cast<uint64_t>(package_w_ * s * 1e6));
    tree_.set("intel-rapl:0:2", static_cast<uint64_t>(dram_w_ * s * 1e6));
  }

  FakePowercap& tree_;
  double package_w_, dram_w_;
  std::chrono::steady_clock::time_point start_;
  double final_s_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class RaplTracker : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("GREENFOUND_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    unsetenv("CUDA_VISIBLE_DEVICES");
  }
};

TEST_F(RaplTracker, KnownRatesWithWrapAroundGiveKnownJoulesAndPhasesSumToTotal) {
  // 40 W through a 10 J counter: four wraps a second; the sampler reads at 25 Hz.
  FakePowercap tree(10'000'000);
  setenv("GREENFOUND_POWERCAP_ROOT", tree.root().c_str(), 1);
  EnergyOptions options;
  options.sample_hz = 25;
  const gf::test::TempDir dir("energy-run");
  const std::string run_dir = dir.str();
  EnergyTracker tracker(options, world_of(0, 1), nullptr, run_dir);
  EXPECT_EQ(tracker.local_labels()[0], Label::kMeasured);
  EXPECT_EQ(tracker.local_labels()[2], Label::kUnavailable);  // no GPU

  // The counters start at 0 when the tracker takes its baseline and stop (final values
  // written) before finish() takes its last sample: the known joules are what they hold.
  tracker.start();
  CounterThread counters(tree, 40.0, 4.0);
  // Steps of a data phase and a 3x longer forward/backward phase, each timed here, until the
  // sampler has taken 10 samples (and at least 6 steps ran): how long that takes on a loaded
  // machine decides nothing, the checks below compare with the times measured.
  double data_s = 0, fwd_s = 0;
  auto timed = [](Phase phase, EnergyTracker& t, double seconds) {
    const auto start = std::chrono::steady_clock::now();
    PhaseScope scope(t, phase);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (int step = 0; step < 6 || lines_containing(run_dir + "/energy.csv", ",package,") < 10; ++step) {
    ASSERT_LT(step, 3000) << "the sampler wrote no rows";
    data_s += timed(Phase::kData, tracker, 0.04);
    fwd_s += timed(Phase::kStudentForwardBackward, tracker, 0.12);
  }
  const double package_joules = counters.stop();
  const EnergySummary summary = tracker.finish(600, 1.5e15);
  ASSERT_GT(package_joules, 35.0);  // 40 W for about a second: three wraps of the 10 J counter
  EXPECT_NEAR(summary.domains[0].joules, package_joules, 0.01 * package_joules);
  EXPECT_NEAR(summary.domains[1].joules, counters.final_dram_joules(), 0.01 * counters.final_dram_joules());
  EXPECT_EQ(summary.domains[0].label, Label::kMeasured);
  EXPECT_EQ(summary.domains[2].label, Label::kUnavailable);

  double phases = 0;
  for (double j : summary.phase_joules) phases += j;
  EXPECT_NEAR(phases, summary.joules, 1e-9 * summary.joules);
  // At constant power a phase's joules follow its active time, as this thread measured it.
  const double data = summary.phase_joules[static_cast<int>(Phase::kData)];
  const double fwd = summary.phase_joules[static_cast<int>(Phase::kStudentForwardBackward)];
  ASSERT_GT(data, 0.0);
  EXPECT_NEAR(fwd / data, fwd_s / data_s, 0.25 * fwd_s / data_s) << "data " << data_s << " s, fwd " << fwd_s << " s";

  // energy.json carries every documented field.
  std::ifstream in(run_dir + "/energy.json");
  ASSERT_TRUE(in);
  const auto json = nlohmann::json::parse(in);
  for (const char* key : {"duration_s", "domains", "nodes", "joules", "kwh", "pue", "kwh_x_pue", "carbon_g_per_kwh",
                          "co2e_kg", "gpus", "device_hours", "device_price_per_hour", "energy_cost", "device_cost",
                          "cost", "images", "joules_per_image", "cost_per_image", "flops", "phases", "notes"})
    EXPECT_TRUE(json.contains(key)) << key;
  for (const char* domain : {"package", "dram", "gpu"}) {
    EXPECT_TRUE(json["domains"][domain].contains("joules")) << domain;
    EXPECT_TRUE(json["domains"][domain].contains("label")) << domain;
  }
  EXPECT_EQ(json["domains"]["package"]["label"], "measured");
  EXPECT_EQ(json["nodes"].size(), 1u);
  EXPECT_EQ(json["nodes"][0]["host"], "node-a");
  EXPECT_DOUBLE_EQ(json["joules"].get<double>(), summary.joules);
  EXPECT_NEAR(json["kwh"].get<double>(), summary.joules / 3.6e6, 1e-15);
  EXPECT_NEAR(json["joules_per_image"].get<double>(), summary.joules / 600, 1e-9);
  EXPECT_EQ(json["flops"].get<double>(), 1.5e15);
  double json_phases = 0;
  for (const auto& [name, joules] : json["phases"].items()) json_phases += joules.get<double>();
  EXPECT_NEAR(json_phases, json["joules"].get<double>(), 1e-9 * summary.joules);

  // energy.csv: header and rows of both domains, joules since start rising to the total.
  std::ifstream csv(run_dir + "/energy.csv");
  std::string line, last_package;
  std::getline(csv, line);
  EXPECT_EQ(line, "time,rank,host,device,domain,joules,watts,label");
  int rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    if (line.find(",package,") != std::string::npos) last_package = line;
    EXPECT_NE(line.find(",node-a,"), std::string::npos) << line;
    EXPECT_NE(line.find(",measured"), std::string::npos) << line;
  }
  EXPECT_GE(rows, 2 * 10);
  std::stringstream fields(last_package);
  std::string field;
  for (int i = 0; i < 6; ++i) std::getline(fields, field, ',');
  EXPECT_NEAR(std::stod(field), summary.domains[0].joules, 0.01);
}

TEST_F(RaplTracker, TwoLocalRanksOnOneNodeCountThePackageOnce) {
  FakePowercap tree(1'000'000'000);
  setenv("GREENFOUND_POWERCAP_ROOT", tree.root().c_str(), 1);
  const gf::test::TempDir dir("energy-run");
  const std::string run_dir = dir.str();
  EnergyOptions options;
  options.sample_hz = 20;
  // Two ranks of one node; each its own world of one here (tests/energy/test_mpi_ranks.cpp
  // runs two real MPI ranks): only local rank 0 opens RAPL.
  EnergyTracker first(options, world_of(0, 2), nullptr, run_dir + "/0");
  EnergyTracker second(options, world_of(1, 2), nullptr, run_dir + "/1");
  EXPECT_EQ(first.local_labels()[0], Label::kMeasured);
  EXPECT_EQ(second.local_labels()[0], Label::kUnavailable);
  EXPECT_EQ(second.local_labels()[1], Label::kUnavailable);
  first.start();
  second.start();
  CounterThread counters(tree, 30.0, 3.0);
  EXPECT_TRUE(wait_until([&] { return lines_containing(run_dir + "/0/energy.csv", ",package,") >= 5; }));
  const double package_joules = counters.stop();
  const EnergySummary a = first.finish(0, 0);
  const EnergySummary b = second.finish(0, 0);
  EXPECT_NEAR(a.domains[0].joules, package_joules, 0.01 * package_joules);
  EXPECT_EQ(b.domains[0].joules, 0.0);
  EXPECT_EQ(b.domains[1].joules, 0.0);
}

}  // namespace
}  // namespace gf::energy
