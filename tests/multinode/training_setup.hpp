#pragma once
// What the multinode tests train: 16 synthetic fundus images packed at 32 px, and a
// vit_tiny at 28 px with a large learning rate and no warmup, so that a few steps move the
// weights far from their start (global batch 4 = 4 steps per epoch); and ClusterTest, the
// fixture that gives a test its own cluster and a shared folder holding that dataset.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "tests/multinode/local_cluster.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/run_job.hpp"

namespace gf::test {

// Writes DIR/images and DIR/dataset; fails the test on error.
inline void make_dataset(const std::string& dir) {
  const std::string bin = greenfound_bin();
  const JobResult synth = run_job(bin + " synth --out " + dir + "/images --n 16 --size 64x64 --seed 1 --threads 1 --quiet");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  const JobResult pack =
      run_job(bin + " pack --images " + dir + "/images --out " + dir + "/dataset --resolution 32 --encoding png --threads 1 --quiet");
  ASSERT_EQ(pack.exit_code, 0) << pack.output;
}

// The run config over DIR/dataset, with `changes` merged in (e.g. {"dist": {"timeout_s": 10}});
// returns its path DIR/<name>.json.
inline std::string write_config(const std::string& dir, const std::string& name, const nlohmann::json& changes = {}) {
  nlohmann::json config = {
      {"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 28}, {"init_seed", 3}}},
      {"optim", {{"lr", 1e-3}, {"epochs", 1000}, {"cosine_epochs", 1000}, {"warmup_epochs", 0}}},
      {"data", {{"path", dir + "/dataset"}, {"split", "all"}, {"batch_size", 4}, {"workers", 1}, {"prefetch", 1}, {"seed", 5}}},
      {"train", {{"threads", 1}, {"device", "cpu"}, {"log_every", 1}, {"checkpoint_every_epochs", 0},
                 {"checkpoint_every_steps", 0}, {"keep_last", 2}}},
      {"dist", {{"backend", "mpi"}, {"bucket_mb", 0.25}, {"timeout_s", 60}}},
  };
  if (!changes.is_null()) config.merge_patch(changes);
  const std::string path = dir + "/" + name + ".json";
  std::ofstream(path) << config.dump(2);
  return path;
}

// Call start() from SetUp: skipped, with the reason, where hosts cannot be made. The folder
// is kept when the test failed.
class ClusterTest : public ::testing::Test {
 protected:
  void start(int hosts, int gpus_per_host) {
    const std::string why = LocalCluster::unavailable();
    if (!why.empty()) GTEST_SKIP() << "SKIPPED: hosts in network namespaces cannot be made here: " << why;
    cluster_ = std::make_unique<LocalCluster>(hosts, gpus_per_host);
    ASSERT_TRUE(cluster_->ok()) << cluster_->log();
    folder_ = std::make_unique<SharedFolder>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_NO_FATAL_FAILURE(make_dataset(folder_->path().string()));
    bin_ = greenfound_bin();
  }
  void TearDown() override {
    if (folder_ && HasFailure()) folder_->keep();
    folder_.reset();
    cluster_.reset();
  }
  std::string path(const std::string& name) const { return (*folder_) / name; }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<SharedFolder> folder_;
  std::string bin_;
};

}  // namespace gf::test
