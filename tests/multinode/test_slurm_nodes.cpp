// SLURM across the test cluster's 2 slurmd hosts, each with 2 fake GPUs (gres gpu:2 backed by
// placeholder device files: SLURM allocates them and sets CUDA_VISIBLE_DEVICES=0,1 in every
// task; the ranks train on the CPU). `greenfound submit --nodes 2 --gpus-per-node 2` must run
// one rank per GPU on both hosts, `status` must show each node's progress and energy, a
// preemption signal must checkpoint every node, requeue and resume to the uninterrupted
// run's weights, and a node that dies must end the job with the reason in `status`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <ATen/ATen.h>

#include "slurm/scheduler.hpp"
#include "tests/multinode/local_cluster.hpp"
#include "tests/multinode/training_setup.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/slurm_jobs.hpp"
#include "train/checkpoint.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using gf::test::finished;
using gf::test::JobResult;
using gf::test::last_step;
using gf::test::wait_for;
using gf::test::LocalCluster;
using gf::test::run_job;
using nlohmann::json;

constexpr long kSteps = 24;

std::string read_file(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

class SlurmAcrossNodes : public gf::test::ClusterTest {
 protected:
  void SetUp() override { start(2, 2); }

  // `submit --nodes 2 --gpus-per-node 2 -- pretrain --max-steps kSteps`: the job id.
  std::string submit(const std::string& config, const std::string& run, const std::string& extra = "") {
    const JobResult out = run_job("cd " + folder_->path().string() + " && " + bin_ + " submit --config " + config + " --run-dir " +
                                  path(run) + " --nodes 2 --gpus-per-node 2 " + extra + " -- pretrain --max-steps " +
                                  std::to_string(kSteps));
    EXPECT_EQ(out.exit_code, 0) << out.output;
    const auto ids = gf::slurm::recorded_job_ids(path(run));
    return ids.empty() ? "" : ids.back();
  }
  std::string job_log(const std::string& run, const std::string& job) { return read_file(path(run) + "/slurm/" + job + ".out"); }
};

TEST_F(SlurmAcrossNodes, OneRankPerGpuOnBothNodesPreemptRequeueResume) {
  const std::string config = gf::test::write_config(
      folder_->path().string(), "slurm",
      {{"slurm", {{"cpus_per_task", 1}, {"time", "00:10:00"}, {"signal_seconds", 60}}}});
  const std::string reference = submit(config, "reference");
  ASSERT_FALSE(reference.empty());
  const std::string script = read_file(path("reference") + "/slurm/job.sbatch");
  EXPECT_NE(script.find("#SBATCH --ntasks-per-node=2\n"), std::string::npos) << script;  // one rank per GPU by default
  EXPECT_NE(script.find("#SBATCH --gpus-per-node=2\n"), std::string::npos) << script;
  const auto ref_state = wait_for(reference, finished, 180);
  ASSERT_EQ(ref_state.state, "COMPLETED") << job_log("reference", reference);

  // Both hosts ran 2 ranks, each seeing the node's 2 GPUs (rank r of a node takes GPU r).
  const json session = json::parse(std::ifstream(path("reference") + "/provenance.json")).at("sessions").at(0);
  EXPECT_EQ(session.at("hosts"), json::parse(R"([{"host": "gf-h1", "ranks": "0-1", "gpus": ["0,1", "0,1"]},
                                                 {"host": "gf-h2", "ranks": "2-3", "gpus": ["0,1", "0,1"]}])"));
  const JobResult status = run_job(bin_ + " status " + path("reference"));
  EXPECT_EQ(status.exit_code, 0) << status.output;
  for (const std::string host : {"gf-h1: ranks 0-1", "gf-h2: ranks 2-3"})
    EXPECT_NE(status.output.find("  node " + host + ", step " + std::to_string(kSteps) + ","), std::string::npos) << status.output;
  EXPECT_EQ(status.output.find("energy unknown"), std::string::npos) << status.output;

  // Preempted mid-run: every node stops at the same step with a checkpoint, the job requeues.
  const std::string job = submit(config, "preempted");
  ASSERT_FALSE(job.empty());
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (last_step(path("preempted")) < 2 && Clock::now() < deadline && !finished(gf::slurm::query_job(job)))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(last_step(path("preempted")), 2) << job_log("preempted", job);
  ASSERT_LT(last_step(path("preempted")), kSteps) << "the run finished before it could be preempted";
  const JobResult signal = run_job("scancel --signal=USR1 --full " + job);
  ASSERT_EQ(signal.exit_code, 0) << signal.output;
  const auto requeued = wait_for(job, gf::test::requeued_and_pending, 90);
  ASSERT_GE(requeued.restarts, 1) << "state " << requeued.state << ", log:\n" << job_log("preempted", job);
  const long stopped_at = last_step(path("preempted"));
  EXPECT_LT(stopped_at, kSteps);
  for (const char* host : {"gf-h1", "gf-h2"}) {
    const json node = json::parse(std::ifstream(path("preempted") + "/nodes/" + host + ".json"));
    EXPECT_EQ(node.at("step"), stopped_at) << host;
  }
  EXPECT_EQ(gf::train::load_checkpoint(gf::train::latest_checkpoint(path("preempted"))).state.step, stopped_at);
  EXPECT_EQ(gf::test::release_requeued(job), "");
  const auto state = wait_for(job, finished, 180);
  ASSERT_EQ(state.state, "COMPLETED") << job_log("preempted", job);
  EXPECT_EQ(state.restarts, 1);
  EXPECT_EQ(last_step(path("preempted")), kSteps);

  // The same final weights as the uninterrupted run.
  const auto a = gf::train::load_checkpoint_weights(gf::train::latest_checkpoint(path("reference")));
  const auto b = gf::train::load_checkpoint_weights(gf::train::latest_checkpoint(path("preempted")));
  ASSERT_EQ(a.step, kSteps);
  ASSERT_EQ(b.step, kSteps);
  ASSERT_EQ(a.student.size(), b.student.size());
  double worst = 0;
  for (size_t i = 0; i < a.student.size(); ++i)
    worst = std::max(worst, (a.student[i].second - b.student[i].second).abs().max().item<double>());
  std::cout << "SLURM 2 nodes x 2 ranks: preempted at step " << stopped_at << ", requeued, resumed to step " << kSteps
            << "; final weights differ from the uninterrupted job by " << worst << std::endl;
  EXPECT_EQ(worst, 0.0);
  const json sessions = json::parse(std::ifstream(path("preempted") + "/provenance.json")).at("sessions");
  ASSERT_EQ(sessions.size(), 2u);
  for (const auto& s : sessions) EXPECT_EQ(s.at("hosts").size(), 2u);
}

// gf-h2 dies mid-run (its slurmd and everything else on it killed): SLURM marks it down and
// ends the job NODE_FAIL; `status` says so and names the node. requeue is off here so that the
// end state is final (with it on, SLURM puts the job back in the queue instead).
TEST_F(SlurmAcrossNodes, DeadNodeEndsTheJobWithTheReasonInStatus) {
  const std::string config = gf::test::write_config(
      folder_->path().string(), "slurm",
      {{"slurm", {{"cpus_per_task", 1}, {"time", "00:10:00"}, {"signal_seconds", 60}, {"requeue", false}}}});
  const std::string job = submit(config, "dies");
  ASSERT_FALSE(job.empty());
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (last_step(path("dies")) < 2 && Clock::now() < deadline && !finished(gf::slurm::query_job(job)))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(last_step(path("dies")), 2) << job_log("dies", job);

  std::ifstream pidfile("/var/spool/slurm-local/run/slurmd-gf-h2.pid");
  pid_t slurmd = 0;
  ASSERT_TRUE(pidfile >> slurmd) << "no slurmd pid file for gf-h2";
  ASSERT_EQ(kill(slurmd, SIGKILL), 0);
  for (pid_t pid : LocalCluster::processes_on(2, "")) kill(pid, SIGKILL);
  const auto died_at = Clock::now();

  const auto state = wait_for(job, finished, 90);
  const double seconds = std::chrono::duration<double>(Clock::now() - died_at).count();
  std::cout << "SLURM: gf-h2 died; the job ended " << state.state << " (" << state.reason << ") " << seconds << " s later" << std::endl;
  ASSERT_EQ(state.state, "NODE_FAIL") << job_log("dies", job);
  const JobResult status = run_job(bin_ + " status " + path("dies"));
  EXPECT_NE(status.output.find("job " + job + ": NODE_FAIL (NodeDown)"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("  node gf-h2 is down: Not responding"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("  node gf-h1: ranks 0-1, step "), std::string::npos) << status.output;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_TRUE(LocalCluster::processes_anywhere(path("dies")).empty()) << "ranks left running";
}

}  // namespace
