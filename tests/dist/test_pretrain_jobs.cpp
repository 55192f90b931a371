// Distributed pretraining end to end, through the real CLI on a tiny synthetic dataset:
// `greenfound launch -n 2 -- pretrain` with global batch B must give one rank's weights and
// per-step losses (also with accumulation), and a rank killed mid-run must end the job with
// the dead rank named, leave the newest checkpoint intact, and `--resume auto` continue.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/run_checks.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/temp_dir.hpp"
#include "train/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::losses;
using gf::test::run_job;
using gf::test::weight_difference;

std::string bin() { return gf::test::greenfound_bin(); }

class DistPretrainJobs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = std::make_unique<gf::test::TempDir>("dist-pretrain");
    root_ = temp_->path();
  }
  // In SetUp, not SetUpTestSuite: a failure there fails each test instead of skipping it.
  void SetUp() override {
    if (fs::exists(dataset() + "/manifest.json")) return;
    const std::string images = (root_ / "images").string();
    JobResult synth = run_job(bin() + " synth --out " + images + " --n 16 --size 64x64 --seed 1 --threads 1 --quiet");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    JobResult pack = run_job(bin() + " pack --images " + images + " --out " + dataset() +
                             " --resolution 32 --encoding png --threads 1 --quiet");
    ASSERT_EQ(pack.exit_code, 0) << pack.output;
  }
  static void TearDownTestSuite() { temp_.reset(); }

  static std::string dataset() { return (root_ / "dataset").string(); }
  static std::string path(const std::string& name) { return (root_ / name).string(); }

  // vit_tiny at 28 px, 16 images, global batch 4: 4 steps per epoch. A large learning rate
  // without warmup so that a few steps move the weights far from their start.
  static std::string write_config(const std::string& name, int accum, int epochs, int checkpoint_every_steps) {
    nlohmann::json config = {
        {"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 28}, {"init_seed", 3}}},
        {"optim", {{"lr", 1e-3}, {"epochs", epochs}, {"cosine_epochs", epochs}, {"warmup_epochs", 0}}},
        {"data", {{"path", dataset()}, {"split", "all"}, {"batch_size", 4}, {"workers", 1}, {"prefetch", 1}, {"seed", 5}}},
        {"train", {{"grad_accum", accum}, {"threads", 1}, {"device", "cpu"}, {"log_every", 1},
                   {"checkpoint_every_epochs", 0}, {"checkpoint_every_steps", checkpoint_every_steps}, {"keep_last", 2}}},
        {"dist", {{"backend", "mpi"}, {"bucket_mb", 0.25}, {"timeout_s", 60}}},
    };
    const std::string file = path(name + ".json");
    std::ofstream(file) << config.dump(2);
    return file;
  }

  static std::string pretrain(const std::string& config, const std::string& run_dir, const std::string& extra) {
    return "pretrain --config " + config + " --run-dir " + run_dir + " " + extra;
  }

  static std::unique_ptr<gf::test::TempDir> temp_;
  static fs::path root_;
};
std::unique_ptr<gf::test::TempDir> DistPretrainJobs::temp_;
fs::path DistPretrainJobs::root_;

void expect_same_run(const std::string& one_rank, const std::string& two_ranks, int64_t steps) {
  const auto l1 = losses(one_rank), l2 = losses(two_ranks);
  ASSERT_EQ(l1.size(), static_cast<size_t>(steps));
  ASSERT_EQ(l2.size(), static_cast<size_t>(steps));
  for (const auto& [step, loss] : l1) EXPECT_NEAR(l2.at(step), loss, 1e-5 * std::max(1.0, std::abs(loss))) << "step " << step;
  // The weights must keep moving after the first step, or agreeing would prove little.
  const double moved = weight_difference(one_rank, one_rank + "-step1");
  const double differ = weight_difference(one_rank, two_ranks);
  std::cout << "weights moved " << moved << " after step 1; 1 vs 2 ranks differ by " << differ << std::endl;
  EXPECT_GT(moved, 1e-4);
  EXPECT_LE(differ, 1e-5);
}

void run_ok(const std::string& command) {
  JobResult job = run_job(command);
  ASSERT_EQ(job.exit_code, 0) << command << "\n" << job.output;
}

TEST_F(DistPretrainJobs, TwoRanksMatchOneRankWithTheSameGlobalBatch) {
  for (int accum : {1, 2}) {
    SCOPED_TRACE("grad_accum " + std::to_string(accum));
    const std::string config = write_config("equal_" + std::to_string(accum), accum, 2, 0);
    const std::string one = path("one_" + std::to_string(accum)), two = path("two_" + std::to_string(accum));
    ASSERT_NO_FATAL_FAILURE(run_ok(bin() + " " + pretrain(config, one + "-step1", "--max-steps 1")));
    ASSERT_NO_FATAL_FAILURE(run_ok(bin() + " " + pretrain(config, one, "--max-steps 5")));
    ASSERT_NO_FATAL_FAILURE(run_ok(bin() + " launch -n 2 --threads 1 -- " + pretrain(config, two, "--max-steps 5")));
    expect_same_run(one, two, 5);
  }
}

// train.threads 0 takes the share `launch --threads` gives each rank.
TEST_F(DistPretrainJobs, LaunchThreadsReachPretrain) {
  const std::string file = write_config("threads", 1, 1, 0);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(file));
  config["train"]["threads"] = 0;
  std::ofstream(file) << config.dump(2);
  for (const char* threads : {"1", "2"}) {
    const std::string command = bin() + " launch -n 1 --threads " + threads + " -- " +
                                pretrain(file, path(std::string("threads_") + threads), "--max-steps 1");
    const JobResult job = run_job(command);
    ASSERT_EQ(job.exit_code, 0) << command << "\n" << job.output;
    EXPECT_NE(job.output.find(std::string("1 rank(s) × ") + threads + " thread(s)"), std::string::npos) << job.output;
  }
}

// A 2-rank run stopped after 2 steps and resumed ends where an uninterrupted one does.
TEST_F(DistPretrainJobs, TwoRankResumeMatchesAnUninterruptedRun) {
  const std::string config = write_config("resume", 1, 2, 0);
  const std::string whole = path("resume_whole"), parts = path("resume_parts");
  const std::string launch = bin() + " launch -n 2 --threads 1 -- ";
  ASSERT_NO_FATAL_FAILURE(run_ok(launch + pretrain(config, whole, "--max-steps 5")));
  ASSERT_NO_FATAL_FAILURE(run_ok(launch + pretrain(config, parts, "--max-steps 2")));
  ASSERT_NO_FATAL_FAILURE(run_ok(launch + pretrain(config, parts, "--resume auto --max-steps 5")));
  EXPECT_EQ(weight_difference(whole, parts), 0.0);
  const auto a = losses(whole), b = losses(parts);
  EXPECT_EQ(a, b);
}

// The pid of the rank `rank` of the job training into `run_dir` (Open MPI's variables in its environment).
pid_t find_rank(const std::string& run_dir, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(entry.path() / "cmdline"), env(entry.path() / "environ");
    std::stringstream c, e;
    c << cmd.rdbuf();
    e << env.rdbuf();
    std::string cmdline = c.str(), environ = e.str();
    for (auto& ch : cmdline) if (ch == '\0') ch = ' ';
    if (cmdline.find(run_dir) == std::string::npos || cmdline.find("pretrain") == std::string::npos) continue;
    if (environ.find(std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0') != std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return -1;
}

TEST_F(DistPretrainJobs, KilledRankEndsTheJobAndResumeContinues) {
  const std::string config = write_config("kill", 1, 1000, 1);
  const std::string run_dir = path("killed");
  gf::test::BackgroundJob job(bin() + " launch -n 2 --threads 1 -- " + pretrain(config, run_dir, ""), path("killed.log"));
  // Let it write a few checkpoints, then kill rank 1 while it trains.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (gf::train::list_checkpoints(run_dir).size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(gf::train::list_checkpoints(run_dir).size(), 2u) << "the run wrote no checkpoints";
  const pid_t victim = find_rank(run_dir, 1);
  ASSERT_GT(victim, 0) << "rank 1 not found";
  ASSERT_EQ(kill(victim, SIGKILL), 0);

  JobResult result;
  ASSERT_TRUE(job.wait(60, result)) << "the job did not end after rank 1 died";
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("rank 1"), std::string::npos) << "the dead rank is not named:\n" << result.output;

  const std::string newest = gf::train::latest_checkpoint(run_dir);
  ASSERT_FALSE(newest.empty());
  gf::train::Checkpoint checkpoint;
  ASSERT_NO_THROW(checkpoint = gf::train::load_checkpoint(newest)) << newest;
  const int64_t step = checkpoint.state.step;
  ASSERT_NO_FATAL_FAILURE(run_ok(bin() + " launch -n 2 --threads 1 -- " +
                                 pretrain(config, run_dir, "--resume auto --max-steps " + std::to_string(step + 2))));
  EXPECT_EQ(gf::train::load_checkpoint(gf::train::latest_checkpoint(run_dir)).state.step, step + 2);
}

// SIGUSR1 (SLURM's preemption warning) sent to `launch` reaches every rank: they agree to
// stop, write a checkpoint and exit with pretrain's requeue status, which launch returns.
TEST_F(DistPretrainJobs, LaunchForwardsThePreemptionSignal) {
  const std::string config = write_config("signal", 1, 1000, 0);
  const std::string run_dir = path("signalled");
  gf::test::BackgroundJob job("exec " + bin() + " launch -n 2 --threads 1 -- " + pretrain(config, run_dir, ""),
                              path("signalled.log"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (losses(run_dir).size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(losses(run_dir).size(), 2u) << "the run did not start training";
  ASSERT_EQ(kill(job.pid(), SIGUSR1), 0);
  JobResult result;
  ASSERT_TRUE(job.wait(60, result)) << "the job did not stop on SIGUSR1";
  EXPECT_EQ(result.exit_code, 75) << result.output;  // train::kExitPreempted
  EXPECT_FALSE(gf::train::latest_checkpoint(run_dir).empty()) << result.output;
}

}  // namespace
