// A host fails mid-step while 2 hosts x 2 ranks train: every rank on it killed, or its
// network cable cut (veth down). The job must end within the collective timeout plus a small
// margin, `launch`'s error must name the host, its ranks, the operation and the step, no rank
// may be left running on any host, and the newest complete checkpoint must load.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <iostream>
#include <regex>
#include <string>
#include <thread>

#include "tests/multinode/local_cluster.hpp"
#include "tests/multinode/training_setup.hpp"
#include "tests/support/run_job.hpp"
#include "train/checkpoint.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using gf::test::JobResult;
using gf::test::LocalCluster;
using gf::test::run_job;
using gf::test::SharedFolder;

constexpr double kTimeoutS = 10;  // dist.timeout_s of the run
constexpr double kMarginS = 8;    // how much later than the timeout the job may end

enum class Fault { kKillRanks, kCutLink };

// Trains until a few checkpoints exist, injects the fault on gf-h2 and returns the seconds
// from the fault to the end of the job.
void run_with_fault(Fault fault) {
  const std::string why = LocalCluster::unavailable();
  if (!why.empty()) GTEST_SKIP() << "SKIPPED: hosts in network namespaces cannot be made here: " << why;
  LocalCluster cluster(2, 0);
  ASSERT_TRUE(cluster.ok()) << cluster.log();
  SharedFolder folder(fault == Fault::kKillRanks ? "killed-host" : "cut-link");
  ASSERT_NO_FATAL_FAILURE(gf::test::make_dataset(folder.path().string()));
  const std::string config = gf::test::write_config(
      folder.path().string(), "fault", {{"dist", {{"timeout_s", kTimeoutS}}}, {"train", {{"checkpoint_every_steps", 1}}}});
  const std::string run_dir = folder / "run";
  gf::test::BackgroundJob job(LocalCluster::launch(gf::test::greenfound_bin(), "gf-h1:2,gf-h2:2") + "pretrain --config " + config +
                                  " --run-dir " + run_dir,
                              folder / "job.log");
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (gf::train::list_checkpoints(run_dir).size() < 2 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(gf::train::list_checkpoints(run_dir).size(), 2u) << "the run wrote no checkpoints";

  const auto fault_at = Clock::now();
  if (fault == Fault::kKillRanks) {
    const auto ranks = LocalCluster::processes_on(2, run_dir);
    ASSERT_EQ(ranks.size(), 2u) << "expected the 2 ranks of gf-h2";
    for (pid_t pid : ranks) ASSERT_EQ(kill(pid, SIGKILL), 0);
  } else {
    const JobResult cut = run_job("bash " + LocalCluster::script() + " link gf-h2 down");
    ASSERT_EQ(cut.exit_code, 0) << cut.output;
  }
  JobResult result;
  const bool ended = job.wait(kTimeoutS + kMarginS + 30, result);
  const double seconds = std::chrono::duration<double>(Clock::now() - fault_at).count();
  if (!ended) folder.keep();
  ASSERT_TRUE(ended) << "the job still runs " << seconds << " s after the fault";
  std::cout << (fault == Fault::kKillRanks ? "killed host" : "cut link") << ": the job ended " << seconds
            << " s after the fault (collective timeout " << kTimeoutS << " s)" << std::endl;
  EXPECT_LE(seconds, kTimeoutS + kMarginS);
  EXPECT_NE(result.exit_code, 0) << result.output;

  // One line names the failed host and its ranks, and the operation and step the job stopped in.
  static const std::regex kSummary(
      R"(greenfound launch: error: host gf-h2 \(ranks? ([0-9-]+)\) failed: [^\n]*; the job stopped in (all_reduce|barrier|all_gather\w*|broadcast) at step ([0-9]+) \(rank [01] on host gf-h1)");
  std::smatch m;
  if (!std::regex_search(result.output, m, kSummary)) {
    folder.keep();
    ADD_FAILURE() << "no summary naming host, rank, operation and step in:\n" << result.output;
  } else {
    std::cout << m[0] << std::endl;
    EXPECT_EQ(m[1], "2-3");  // every rank of the host
  }

  // Nothing of the job is left on any host (nor mpirun's daemons).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(LocalCluster::processes_anywhere(run_dir).empty()) << "ranks left running";
  for (int k = 1; k <= 2; ++k) EXPECT_TRUE(LocalCluster::processes_on(k, "orted").empty()) << "orted left on " << LocalCluster::host(k);

  // The newest complete checkpoint loads (sizes of every file checked) and is a step the run reached.
  const std::string newest = gf::train::latest_checkpoint(run_dir);
  ASSERT_FALSE(newest.empty());
  gf::train::Checkpoint checkpoint;
  ASSERT_NO_THROW(checkpoint = gf::train::load_checkpoint(newest)) << newest;
  EXPECT_GE(checkpoint.state.step, 2);
  if (!m.empty()) EXPECT_LE(checkpoint.state.step, std::stol(m[3]));
  const JobResult inspect = run_job(gf::test::greenfound_bin() + " inspect " + run_dir);
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
}

TEST(NodeFaults, EveryRankOfAHostKilledMidStep) { run_with_fault(Fault::kKillRanks); }

TEST(NodeFaults, HostCableCut) { run_with_fault(Fault::kCutLink); }

}  // namespace
