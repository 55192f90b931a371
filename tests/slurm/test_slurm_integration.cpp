// Against the real local SLURM cluster of scripts/slurm-local.sh (one node, 2 CPUs):
// `greenfound submit` a 2-rank demo-sized pretrain and watch it complete; preempt one with
// `scancel --signal=USR1 --full`, let it requeue and resume, and compare its final weights
// with an uninterrupted run; run an embed sweep as a job array and gather it with probe; run
// a pretraining sweep (`greenfound sweep --slurm`) as a job array with one task preempted,
// requeued and resumed, ending with the same probe results as the sweep run uninterrupted here.
// Skipped, visibly, only where slurmctld cannot run at all.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "slurm/scheduler.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/slurm_jobs.hpp"
#include "train/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using gf::test::finished;
using gf::test::JobResult;
using gf::test::last_step;
using gf::test::run_job;
using gf::test::wait_for;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool controller_up() { return run_job("scontrol ping").output.find("is UP") != std::string::npos; }

// "" when the one-node cluster answers (started, or reshaped from the multinode one, here),
// else why it cannot run.
std::string cluster_unavailable() {
  if (!fs::exists("/usr/sbin/slurmctld") || !fs::exists("/usr/sbin/slurmd")) return "slurmctld/slurmd are not installed";
  if (::geteuid() != 0) return controller_up() ? "" : "the local cluster needs root to start (uid " + std::to_string(::geteuid()) + ")";
  const JobResult start = run_job("bash " + env("GF_SOURCE_DIR") + "/scripts/slurm-local.sh start");
  if (start.exit_code != 0 || !controller_up()) return "scripts/slurm-local.sh start failed: " + start.output;
  return "";
}

class SlurmIntegration : public ::testing::Test {
 protected:
  static constexpr long kSteps = 40;  // optimizer steps of every run here (~3 s on 2 cores)

  void SetUp() override {
    const std::string why = cluster_unavailable();
    if (!why.empty()) GTEST_SKIP() << "SKIPPED: slurmctld cannot run here (" << why << ")";
    bin_ = env("GF_BIN");
    ASSERT_TRUE(fs::exists(bin_)) << "GF_BIN=" << bin_;
    root_ = fs::temp_directory_path() /
            ("gf_slurm_it_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    make_dataset_and_config();
  }

  void TearDown() override {
    if (!root_.empty() && !HasFailure()) fs::remove_all(root_);
  }

  // A handful of synthetic fundus images, packed small, and the demo config shrunk to a
  // few seconds per run.
  void make_dataset_and_config() {
    const JobResult synth =
        run_job(bin_ + " synth --out " + (root_ / "images").string() + " --n 16 --seed 3 --size 160x120 --threads 1 --quiet");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    const JobResult pack = run_job(bin_ + " pack --images " + (root_ / "images").string() + " --labels " +
                                   (root_ / "images" / "labels.csv").string() +
                                   " --id-column image_id --split-by patient_id --test-fraction 0.5 --out " +
                                   (root_ / "dataset").string() + " --resolution 64 --threads 1 --quiet");
    ASSERT_EQ(pack.exit_code, 0) << pack.output;
    std::ifstream demo(env("GF_SOURCE_DIR") + "/configs/demo.json");
    ASSERT_TRUE(demo) << "configs/demo.json is missing";
    nlohmann::json config = nlohmann::json::parse(demo);
    config["model"]["img_size"] = 56;
    config["data"]["path"] = (root_ / "dataset").string();
    config["data"]["split"] = "all";  // 16 images = 4 steps per epoch, 48 in all: max-steps ends the run
    config["data"]["batch_size"] = 4;
    config["data"]["workers"] = 1;
    config["train"]["log_every"] = 1;
    config["train"]["threads"] = 1;
    config["train"]["checkpoint_every_steps"] = 0;
    config["slurm"] = {{"ntasks_per_node", 2}, {"cpus_per_task", 1}, {"time", "00:10:00"}, {"signal_seconds", 60}};
    std::ofstream(root_ / "config.json") << config.dump(2);
  }

  // `greenfound submit ... -- pretrain --max-steps kSteps`; returns the job id it printed.
  std::string submit(const fs::path& run_dir) {
    const JobResult out =
        run_job("cd " + root_.string() + " && " + bin_ + " submit --config " + (root_ / "config.json").string() + " --run-dir " +
                run_dir.string() + " -- pretrain --max-steps " + std::to_string(kSteps));
    EXPECT_EQ(out.exit_code, 0) << out.output;
    const auto ids = gf::slurm::recorded_job_ids(run_dir.string());
    EXPECT_FALSE(ids.empty()) << out.output;
    if (ids.empty()) return "";
    EXPECT_NE(out.output.find("submitted job " + ids.back()), std::string::npos) << out.output;
    return ids.back();
  }

  std::string job_log(const fs::path& run_dir, const std::string& job) {
    return read_file(run_dir / "slurm" / (job + ".out"));
  }

  std::string bin_;
  fs::path root_;
};

TEST_F(SlurmIntegration, SubmittedPretrainCompletes) {
  const fs::path run = root_ / "run";
  const std::string job = submit(run);
  ASSERT_FALSE(job.empty());
  EXPECT_TRUE(fs::exists(run / "slurm" / "job.sbatch"));

  const auto state = wait_for(job, finished, 150);
  ASSERT_EQ(state.state, "COMPLETED") << "job " << job << " log:\n" << job_log(run, job);
  EXPECT_EQ(state.exit_code, "0:0");

  const auto checkpoints = gf::train::list_checkpoints(run.string());
  ASSERT_FALSE(checkpoints.empty());
  EXPECT_EQ(gf::train::load_checkpoint_weights(checkpoints.back()).step, kSteps);
  EXPECT_TRUE(fs::exists(run / "energy.csv"));
  EXPECT_TRUE(fs::exists(run / "energy.json"));
  // Both ranks ran inside the job: the 2-rank world is in the job's log or train.log.
  EXPECT_EQ(last_step(run), kSteps);

  const JobResult status = run_job(bin_ + " status " + run.string());
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("job " + job + ": COMPLETED"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("progress: step " + std::to_string(kSteps) + "/" + std::to_string(kSteps)), std::string::npos)
      << status.output;
  EXPECT_NE(status.output.find("energy so far: "), std::string::npos) << status.output;

  const JobResult cancel = run_job(bin_ + " cancel " + run.string());
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  EXPECT_NE(cancel.output.find("nothing to cancel"), std::string::npos) << cancel.output;
}

TEST_F(SlurmIntegration, PreemptedJobRequeuesAndResumesExactly) {
  // The uninterrupted reference first (the node fits one 2-rank job at a time).
  const fs::path reference = root_ / "reference";
  const std::string ref_job = submit(reference);
  ASSERT_FALSE(ref_job.empty());

  const fs::path run = root_ / "preempted";
  const std::string job = submit(run);
  ASSERT_FALSE(job.empty());
  const auto ref_state = wait_for(ref_job, finished, 150);
  ASSERT_EQ(ref_state.state, "COMPLETED") << job_log(reference, ref_job);

  // Mid-run: after the first step and well before the last.
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (last_step(run) < 1 && Clock::now() < deadline && !finished(gf::slurm::query_job(job)))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(last_step(run), 1) << job_log(run, job);
  ASSERT_LT(last_step(run), kSteps) << "the run finished before it could be preempted";
  const JobResult signal = run_job("scancel --signal=USR1 --full " + job);
  ASSERT_EQ(signal.exit_code, 0) << signal.output;

  // The ranks checkpoint and exit with the requeue code; the batch shell requeues the job,
  // which SLURM holds back ~2 minutes (BeginTime): release it at once.
  const auto requeued = wait_for(job, gf::test::requeued_and_pending, 60);
  ASSERT_GE(requeued.restarts, 1) << "state " << requeued.state << ", log:\n" << job_log(run, job);
  const long stopped_at = last_step(run);
  EXPECT_LT(stopped_at, kSteps);
  EXPECT_EQ(gf::test::release_requeued(job), "");

  const auto state = wait_for(job, finished, 150);
  const std::string log = job_log(run, job);
  ASSERT_EQ(state.state, "COMPLETED") << log;
  EXPECT_EQ(state.restarts, 1);
  EXPECT_NE(log.find("requeueing job " + job), std::string::npos) << log;
  EXPECT_NE(log.find("restart 1"), std::string::npos) << log;
  EXPECT_EQ(last_step(run), kSteps);

  // Same final weights as the uninterrupted run.
  const auto a = gf::train::load_checkpoint_weights(gf::train::latest_checkpoint(reference.string()));
  const auto b = gf::train::load_checkpoint_weights(gf::train::latest_checkpoint(run.string()));
  EXPECT_EQ(a.step, kSteps);
  EXPECT_EQ(b.step, kSteps);
  ASSERT_EQ(a.student.size(), b.student.size());
  for (size_t i = 0; i < a.student.size(); ++i) {
    const auto& [name, tensor] = a.student[i];
    ASSERT_EQ(name, b.student[i].first);
    EXPECT_TRUE(at::equal(tensor, b.student[i].second))
        << name << ": max abs diff " << (tensor - b.student[i].second).abs().max().item<double>();
  }

  const JobResult status = run_job(bin_ + " status " + run.string());
  EXPECT_NE(status.output.find("job " + job + ": COMPLETED"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("requeued 1x"), std::string::npos) << status.output;

  // provenance.json: the first session, and the requeued one that started from its checkpoint.
  const auto provenance = nlohmann::json::parse(std::ifstream(run / "provenance.json"));
  ASSERT_EQ(provenance.at("sessions").size(), 2u) << provenance.dump(1);
  EXPECT_EQ(provenance["sessions"][0].at("start_step"), 0);
  EXPECT_GT(provenance["sessions"][1].at("start_step").get<long>(), 0);
  EXPECT_LE(provenance["sessions"][1].at("start_step").get<long>(), stopped_at);
  for (const auto& session : provenance["sessions"]) EXPECT_EQ(session.at("ranks"), 2);
}

TEST_F(SlurmIntegration, ArraySweepEmbedsEachPairAndProbeGathersThem) {
  // Two random-init encoders x one dataset: two array tasks of one rank each.
  std::ofstream(root_ / "sweep.json") << R"({
    "models": {"seed1": {"init-seed": 1, "arch": "vit_tiny_patch14_reg4", "img-size": 56},
               "seed2": {"init-seed": 2, "arch": "vit_tiny_patch14_reg4", "img-size": 56}},
    "datasets": {"synth": {"data": ")" + (root_ / "dataset").string() + R"(", "split": "all"}}
  })";
  const fs::path run = root_ / "sweep";
  const JobResult out = run_job("cd " + root_.string() + " && " + bin_ + " submit --config " + (root_ / "config.json").string() +
                                " --run-dir " + run.string() + " --ntasks-per-node 1 --array " + (root_ / "sweep.json").string() +
                                " -- embed --threads 1 --workers 1");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto ids = gf::slurm::recorded_job_ids(run.string());
  ASSERT_EQ(ids.size(), 1u) << out.output;
  EXPECT_NE(out.output.find("(array of 2 tasks, " + ids[0] + "_0.." + ids[0] + "_1)"), std::string::npos) << out.output;

  const auto state = wait_for(ids[0], finished, 120);
  ASSERT_EQ(state.state, "COMPLETED") << read_file(run / "slurm" / (ids[0] + "_0.out")) << read_file(run / "slurm" / (ids[0] + "_1.out"));
  ASSERT_EQ(state.tasks.size(), 2u);
  EXPECT_EQ(state.tasks[0].job_id, ids[0] + "_0");
  EXPECT_EQ(state.tasks[1].job_id, ids[0] + "_1");
  for (const char* model : {"seed1", "seed2"}) EXPECT_TRUE(fs::exists(run / "embeddings" / model / "synth" / "embeddings.h5")) << model;

  const JobResult probe = run_job("bash " + (run / "slurm" / "probe_commands.sh").string());
  ASSERT_EQ(probe.exit_code, 0) << probe.output;
  const auto results = nlohmann::json::parse(read_file(run / "probe" / "synth" / "results.json"));
  std::set<std::string> models;
  for (const auto& r : results.at("results")) models.insert(r.at("model").get<std::string>());
  EXPECT_EQ(models, (std::set<std::string>{"seed1", "seed2"}));

  const JobResult status = run_job(bin_ + " status " + run.string());
  EXPECT_NE(status.output.find("task " + ids[0] + "_1: COMPLETED"), std::string::npos) << status.output;
}

TEST_F(SlurmIntegration, SweepArrayTaskPreemptedRequeuesWithTheSameResults) {
  // Two tiny pretraining runs on a set big enough to probe, one rank of one CPU each.
  const fs::path images = root_ / "sweep-images", dataset = root_ / "sweep-dataset";
  JobResult step = run_job(bin_ + " synth --out " + images.string() + " --n 64 --size 96x96 --seed 2 --threads 1 --quiet");
  ASSERT_EQ(step.exit_code, 0) << step.output;
  step = run_job(bin_ + " pack --images " + images.string() + " --labels " + (images / "labels.csv").string() +
                 " --id-column image_id --split-by patient_id --test-fraction 0.3 --seed 2 --out " + dataset.string() +
                 " --resolution 64 --threads 1 --quiet");
  ASSERT_EQ(step.exit_code, 0) << step.output;
  const nlohmann::json sweep = {
      {"base",
       {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}, {"init_seed", 1}}},
        {"optim", {{"lr", 1e-3}, {"epochs", 6}, {"cosine_epochs", 6}, {"warmup_epochs", 1}}},
        {"data", {{"batch_size", 4}, {"workers", 1}, {"prefetch", 1}, {"seed", 3}}},
        {"train", {{"threads", 1}, {"log_every", 1}, {"checkpoint_every_epochs", 2}, {"keep_last", 2}, {"device", "cpu"}}},
        {"energy", {{"sample_hz", 20}}},
        {"slurm", {{"cpus_per_task", 1}, {"time", "00:10:00"}, {"signal_seconds", 60}}}}},
      {"data", dataset.string()},
      {"list", {{{"name", "half-data"}, {"data.fraction", 0.5}}, {{"name", "all-data"}, {"data.fraction", 1}}}},
      {"evaluation", {{{"name", "synth"}, {"tasks", {{{"name", "any_dr"}, {"label", "dr_grade > 0"}}}}}}}};
  std::ofstream(root_ / "sweep-file.json") << sweep.dump(2);
  const std::string sweep_cmd = "cd " + root_.string() + " && " + bin_ + " sweep " + (root_ / "sweep-file.json").string() + " --out ";

  const auto start = Clock::now();
  const auto elapsed = [&] { return std::to_string(std::chrono::duration<double>(Clock::now() - start).count()) + " s"; };
  // The reference: the same sweep, uninterrupted, here.
  step = run_job(sweep_cmd + (root_ / "straight").string() + " --local");
  ASSERT_EQ(step.exit_code, 0) << step.output;
  std::cout << "uninterrupted local sweep: " << elapsed() << std::endl;

  // One array, one run at a time (%1), so task 1 starts after task 0 has finished.
  const fs::path swept = root_ / "array";
  const JobResult submitted = run_job(sweep_cmd + swept.string() + " --slurm --parallel 1");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const auto ids = gf::slurm::recorded_job_ids(swept.string());
  ASSERT_EQ(ids.size(), 1u) << submitted.output;
  const std::string job = ids[0], task1 = job + "_1";
  EXPECT_NE(submitted.output.find("(array of 2 run(s), " + job + "_0.." + task1 + ", at most 1 at once)"), std::string::npos)
      << submitted.output;
  EXPECT_NE(read_file(swept / "slurm" / "job.sbatch").find("#SBATCH --array=0-1%1"), std::string::npos);
  const auto task_log = [&](int i) { return read_file(swept / "slurm" / (job + "_" + std::to_string(i) + ".out")); };

  // Preempt task 1 mid-pretraining: the sweep passes USR1 on to the ranks, which checkpoint
  // and exit with the requeue code; the task requeues itself.
  const fs::path second = swept / "runs" / "all-data";
  const auto deadline = Clock::now() + std::chrono::seconds(180);
  while (last_step(second) < 3 && Clock::now() < deadline && !finished(gf::slurm::query_job(job)))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(last_step(second), 3) << task_log(0) << task_log(1);
  const long total_steps = last_step(root_ / "straight" / "runs" / "all-data");
  ASSERT_LT(last_step(second), total_steps) << "the run finished before it could be preempted";
  std::cout << "preempting " << task1 << " at step " << last_step(second) << " of " << total_steps << ": " << elapsed() << std::endl;
  const JobResult signal = run_job("scancel --signal=USR1 --full " + task1);
  ASSERT_EQ(signal.exit_code, 0) << signal.output;
  const auto requeued = wait_for(task1, gf::test::requeued_and_pending, 60);
  ASSERT_GE(requeued.restarts, 1) << "state " << requeued.state << ", log:\n" << task_log(1);
  EXPECT_LT(last_step(second), total_steps);
  EXPECT_EQ(gf::test::release_requeued(task1), "");

  const auto state = wait_for(job, finished, 240);
  ASSERT_EQ(state.state, "COMPLETED") << task_log(0) << task_log(1);
  std::cout << "array finished: " << elapsed() << std::endl;
  const std::string log1 = task_log(1);
  EXPECT_NE(log1.find("requeueing job " + task1), std::string::npos) << log1;
  EXPECT_EQ(gf::slurm::query_job(job + "_0").restarts, 0) << "task 0 was requeued with task 1";
  EXPECT_NE(log1.find("restart 1"), std::string::npos) << log1;
  EXPECT_NE(log1.find("all-data: resuming (was interrupted)"), std::string::npos) << log1;

  // Same probe results as uninterrupted; the resumed run's bill has both sessions.
  for (const char* run : {"half-data", "all-data"}) {
    const auto a = nlohmann::json::parse(read_file(root_ / "straight" / "runs" / run / "probe" / "synth" / "results.json"));
    const auto b = nlohmann::json::parse(read_file(swept / "runs" / run / "probe" / "synth" / "results.json"));
    ASSERT_EQ(a["results"].size(), b["results"].size()) << run;
    for (size_t i = 0; i < a["results"].size(); ++i)
      EXPECT_DOUBLE_EQ(a["results"][i]["auroc"].get<double>(), b["results"][i]["auroc"].get<double>()) << run << " " << i;
    EXPECT_EQ(last_step(swept / "runs" / run), last_step(root_ / "straight" / "runs" / run)) << run;
  }
  EXPECT_TRUE(fs::exists(second / "energy-sessions" / "1.json"));

  const JobResult status = run_job(bin_ + " status " + swept.string());
  EXPECT_NE(status.output.find("total: 2 done"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("task " + task1 + ": COMPLETED"), std::string::npos) << status.output;
  // Again: nothing left to submit.
  const JobResult again = run_job(sweep_cmd + swept.string() + " --slurm");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("all 2 runs done, nothing to submit"), std::string::npos) << again.output;
  EXPECT_EQ(gf::slurm::recorded_job_ids(swept.string()).size(), 1u);
}

}  // namespace
