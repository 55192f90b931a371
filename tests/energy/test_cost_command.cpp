// `greenfound cost` end to end: a small config of our own priced on table GPUs; the planned
// hours follow the GPU count and the --hours mode inverts the --epochs mode.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "tests/support/run_job.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using gf::test::JobResult;

using gf::test::greenfound;

// The first capture of `pattern` in the output, as a number (thousands separators dropped).
double number_in(const std::string& output, const std::string& pattern) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex(pattern))) {
    ADD_FAILURE() << "no match for " << pattern << " in\n" << output;
    return -1;
  }
  return std::stod(std::regex_replace(match[1].str(), std::regex(","), ""));
}

class CostCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_ / "small.json";
    std::ofstream(config_) << R"({"model": {"arch": "vit_small_patch14_reg4", "img_size": 224},
                                  "optim": {"epochs": 10}, "data": {"batch_size": 64},
                                  "energy": {"pue": 1.5, "energy_price_per_kwh": 0.2}})";
  }

  gf::test::TempDir dir_{"cost"};
  std::string config_;
};

TEST_F(CostCommand, PricesAPlannedRun) {
  const JobResult one = greenfound("cost --config " + config_ + " --gpu A100 --gpus 1 --dataset-images 1000000");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("10 epochs x 1,000,000 images = 10,000,000 images"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("35% of A100 dense bf16 peak 312 TFLOPS"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("less than $100"), std::string::npos) << one.output;
  const double hours = number_in(one.output, R"(time\s+([0-9.]+) h wall)");
  const double kwh = number_in(one.output, R"(energy\s+([0-9.]+) kWh)");
  const double kwh_pue = number_in(one.output, R"(x PUE 1.50 = ([0-9.]+) kWh)");
  EXPECT_NEAR(kwh, hours * 0.4, 0.01 * kwh);  // 400 W board power (3 printed digits)
  EXPECT_NEAR(kwh_pue, 1.5 * kwh, 0.01 * kwh_pue);

  const JobResult two = greenfound("cost --config " + config_ + " --gpu a100 --gpus 2 --dataset-images 1000000");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NEAR(number_in(two.output, R"(time\s+([0-9.]+) h wall)"), hours / 2, 0.01 * hours);

  // Ten times the work in --hours mode processes ten times the images.
  const JobResult back = greenfound("cost --config " + config_ + " --gpu A100 --hours 10 --dataset-images 1000000");
  ASSERT_EQ(back.exit_code, 0) << back.output;
  const double images = number_in(back.output, R"(10.0 h fit ([0-9,]+) images)");
  EXPECT_NEAR(images / (10.0 / hours * 1e7), 1.0, 0.01);
}

TEST_F(CostCommand, GpuTableOverridesThePrice) {
  std::ofstream(dir_ / "gpus.json") << R"({"A100": {"price_per_hour": 10}, "TPU-X": {"board_power_w": 200,
                                          "price_per_hour": 1, "dense_tflops": 100}})";
  const JobResult run = greenfound("cost --config " + config_ + " --gpu A100 --hours 2 --gpu-table " + (dir_ / "gpus.json"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // 2 h x $10 + 0.8 kWh x 1.5 x $0.2.
  EXPECT_NE(run.output.find("cost       $20.24 = $20.00 GPU time + $0.24 energy"), std::string::npos) << run.output;
  const JobResult added = greenfound("cost --config " + config_ + " --gpu TPU-X --hours 1 --gpu-table " + (dir_ / "gpus.json"));
  EXPECT_EQ(added.exit_code, 0) << added.output;
}

TEST_F(CostCommand, BadInputIsOneClearError) {
  const JobResult unknown = greenfound("cost --config " + config_ + " --gpu MI300X");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("--gpu: found \"MI300X\", expected one of A100, H100"), std::string::npos)
      << unknown.output;
  const JobResult both = greenfound("cost --config " + config_ + " --gpu A100 --hours 1 --epochs 3");
  EXPECT_NE(both.exit_code, 0) << both.output;
  const JobResult bad_energy = greenfound("cost --config " + config_ + " --gpu A100 --set energy.pue=0.7");
  EXPECT_NE(bad_energy.exit_code, 0);
  EXPECT_NE(bad_energy.output.find("energy.pue: found 0.7, expected a number >= 1"), std::string::npos)
      << bad_energy.output;
}

}  // namespace

TEST_F(CostCommand, MeasuredRateAndEnergyReplaceTheAssumptions) {
  // 10 epochs x 1,000,000 images at a measured 250 images/s on each of 2 H200s: 20,000 s.
  const std::string measured = " --gpu H200 --gpus 2 --dataset-images 1000000 --images-per-s 250 --joules-per-image 2";
  const JobResult run = greenfound("cost --config " + config_ + measured + " --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json out = nlohmann::json::parse(run.output);
  EXPECT_EQ(out["rate"], "measured");
  EXPECT_EQ(out["energy"], "measured");
  EXPECT_EQ(out["gpu"], "H200");
  EXPECT_NEAR(out["hours"].get<double>(), 1e7 / 500 / 3600, 1e-9);
  EXPECT_NEAR(out["gpu_hours"].get<double>(), 2 * 1e7 / 500 / 3600, 1e-9);
  EXPECT_NEAR(out["kwh"].get<double>(), 2 * 1e7 / 3.6e6, 1e-9);  // 2 J x 1e7 images, not 2 x 700 W
  EXPECT_NEAR(out["kwh_x_pue"].get<double>(), 1.5 * out["kwh"].get<double>(), 1e-9);
  EXPECT_NEAR(out["cost_usd"].get<double>(),
              out["gpu_hours"].get<double>() * 3.50 + out["kwh_x_pue"].get<double>() * 0.2, 1e-9);
  EXPECT_NEAR(out["mfu"].get<double>(), 250 * out["flops_per_image"].get<double>() / 989.4e12, 1e-12);

  const JobResult text = greenfound("cost --config " + config_ + measured);
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("measured   250 images/s per GPU"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("measured 2 J per image"), std::string::npos) << text.output;
  EXPECT_NE(greenfound("cost --config " + config_ + measured + " --mfu 0.5").exit_code, 0);
}
