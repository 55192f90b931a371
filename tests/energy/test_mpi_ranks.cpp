// Two real MPI ranks on one node (mpirun -n 2 energy_worker): the node's RAPL package is
// counted once, each rank measures its own GPU, and a GPU shared by both ranks is counted once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/energy/fake_powercap.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using gf::energy::testing::FakePowercap;
using gf::test::JobResult;

JobResult run_two_ranks(const std::string& run_dir, double seconds) {
  return gf::test::run_job(gf::test::mpirun(2) + GF_ENERGY_WORKER " " + run_dir + " " + std::to_string(seconds));
}

// Advances the package counter at `watts` until destroyed.
class PackageCounter {
 public:
  PackageCounter(FakePowercap& tree, double watts) {
    thread_ = std::thread([this, &tree, watts] {
      const auto start = std::chrono::steady_clock::now();
      while (!stop_) {
        tree.set("intel-rapl:0", static_cast<uint64_t>(
                                     watts * 1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~PackageCounter() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

nlohmann::json run_job_and_read(const std::string& cuda_visible, std::string* csv_text) {
  FakePowercap tree(1'000'000'000);
  setenv("GREENFOUND_POWERCAP_ROOT", tree.root().c_str(), 1);
  setenv("GREENFOUND_NVML_LIB", GF_FAKE_NVML, 1);
  setenv("CUDA_VISIBLE_DEVICES", cuda_visible.c_str(), 1);
  const gf::test::TempDir dir("energy-mpi");
  const std::string run_dir = dir.str();
  JobResult job;
  {
    PackageCounter counter(tree, 50.0);
    job = run_two_ranks(run_dir, 2.0);
  }
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("rank 1: energy worker ok"), std::string::npos) << job.output;
  std::ifstream in(run_dir + "/energy.json");
  nlohmann::json json = in ? nlohmann::json::parse(in) : nlohmann::json::object();
  std::ifstream csv(run_dir + "/energy.csv");
  csv_text->assign(std::istreambuf_iterator<char>(csv), std::istreambuf_iterator<char>());
  return json;
}

// Ranks start and stop a few ms apart, the job's duration is the longest rank's, and this
// process's counter thread may lag a few ms behind the clock: 3% over 2 s.
constexpr double kTolerance = 0.03;

TEST(EnergyMpiJob, PackageOnceAndOneGpuPerRank) {
  std::string csv;
  const auto json = run_job_and_read("0,1", &csv);
  ASSERT_TRUE(json.contains("joules")) << "no energy.json";
  const double seconds = json["duration_s"];
  // 50 W package, read by local rank 0 only; GPUs 0 and 1 draw 100 W and 200 W.
  EXPECT_NEAR(json["domains"]["package"]["joules"].get<double>(), 50.0 * seconds, kTolerance * 50.0 * seconds);
  EXPECT_EQ(json["domains"]["package"]["label"], "measured");
  EXPECT_NEAR(json["domains"]["gpu"]["joules"].get<double>(), 300.0 * seconds, kTolerance * 300.0 * seconds);
  EXPECT_EQ(json["gpus"], 2);
  EXPECT_EQ(json["nodes"].size(), 1u);
  EXPECT_NEAR(json["device_hours"].get<double>(), 2 * seconds / 3600.0, kTolerance * 2 * seconds / 3600.0);
  double phases = 0;
  for (const auto& [name, joules] : json["phases"].items()) phases += joules.get<double>();
  EXPECT_NEAR(phases, json["joules"].get<double>(), 1e-9 * phases);
  // Both ranks appended rows to the one energy.csv; the package rows are rank 0's only.
  EXPECT_NE(csv.find(",0,"), std::string::npos);
  EXPECT_NE(csv.find(",1,"), std::string::npos) << csv.substr(0, 2000);
  std::istringstream lines(csv);
  std::string line;
  while (std::getline(lines, line))
    if (line.find(",package,") != std::string::npos) EXPECT_NE(line.find(",0,"), std::string::npos) << line;
}

TEST(EnergyMpiJob, GpuSharedByTwoRanksIsCountedOnce) {
  std::string csv;
  const auto json = run_job_and_read("1", &csv);  // both ranks drive GPU 1 (200 W)
  ASSERT_TRUE(json.contains("joules")) << "no energy.json";
  const double seconds = json["duration_s"];
  EXPECT_EQ(json["gpus"], 1);
  EXPECT_NEAR(json["domains"]["gpu"]["joules"].get<double>(), 200.0 * seconds, kTolerance * 200.0 * seconds);
  EXPECT_NEAR(json["domains"]["package"]["joules"].get<double>(), 50.0 * seconds, kTolerance * 50.0 * seconds);
}

}  // namespace
