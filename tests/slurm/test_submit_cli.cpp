// `greenfound submit` through the binary, without a cluster: --dry-run scripts, the command
// pretrain is given, site files, and the errors raised before anything is submitted.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>


#include "tests/support/run_job.hpp"

namespace {

namespace fs = std::filesystem;

using gf::test::JobResult;

class SubmitCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("GF_BIN");
    bin_ = bin ? bin : "";
    ASSERT_TRUE(fs::exists(bin_)) << "GF_BIN=" << bin_;
    root_ = fs::temp_directory_path() /
            ("gf_submit_cli_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ifstream demo(std::string(std::getenv("GF_SOURCE_DIR") ? std::getenv("GF_SOURCE_DIR") : "") + "/configs/demo.json");
    ASSERT_TRUE(demo) << "configs/demo.json is missing";
    std::ofstream(root_ / "demo.json") << demo.rdbuf();
  }
  void TearDown() override { fs::remove_all(root_); }

  // Runs `greenfound submit --config demo.json <args>` in root_, with `env` prepended.
  JobResult submit(const std::string& args, const std::string& env = "") {
    return gf::test::run_job("cd " + root_.string() + " && env -u GREENFOUND_SITE " + env + " " + bin_ +
                             " submit --config demo.json " + args);
  }

  std::string bin_;
  fs::path root_;
};

TEST_F(SubmitCli, DryRunWritesThePretrainScript) {
  const JobResult out = submit("--dry-run --time 00:30:00 -- pretrain --max-steps 5");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const fs::path script = root_ / "runs" / "demo" / "slurm" / "job.sbatch";
  ASSERT_TRUE(fs::exists(script));
  std::stringstream text;
  text << std::ifstream(script).rdbuf();
  EXPECT_NE(out.output.find(text.str()), std::string::npos);  // printed as written
  EXPECT_NE(out.output.find("(dry run: not submitted)"), std::string::npos);
  // demo.json's "slurm" section, the --time flag, and pretrain's resumable command line.
  EXPECT_NE(text.str().find("#SBATCH --ntasks-per-node=2\n"), std::string::npos);
  EXPECT_NE(text.str().find("#SBATCH --time=00:30:00\n"), std::string::npos);
  EXPECT_NE(text.str().find("#SBATCH --job-name=gf-pretrain\n"), std::string::npos);
  EXPECT_NE(text.str().find("#SBATCH --chdir=" + root_.string() + "\n"), std::string::npos);
  EXPECT_NE(text.str().find(" pretrain --max-steps 5 --config " + (root_ / "demo.json").string() + " --run-dir " +
                            (root_ / "runs" / "demo").string() + " --resume auto &\n"),
            std::string::npos)
      << text.str();
  EXPECT_FALSE(fs::exists(root_ / "runs" / "demo" / "slurm" / "job_ids"));
}

TEST_F(SubmitCli, SiteFileFromTheEnvironment) {
  std::ofstream(root_ / "site.json") << R"({"partition": "cpu-long", "account": "eye-lab", "modules": ["openmpi/4.1"]})";
  const JobResult out = submit("--dry-run --run-dir r -- pretrain", "GREENFOUND_SITE=" + (root_ / "site.json").string());
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("#SBATCH --partition=cpu-long\n"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("#SBATCH --account=eye-lab\n"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("module load openmpi/4.1\n"), std::string::npos) << out.output;
  // --partition on the command line wins over the site.
  const JobResult flag = submit("--dry-run --run-dir r --site site.json --partition debug -- pretrain");
  EXPECT_NE(flag.output.find("#SBATCH --partition=debug\n"), std::string::npos) << flag.output;
}

TEST_F(SubmitCli, ErrorsBeforeSubmitting) {
  const JobResult gpus = submit("--dry-run --gpus-per-node 4 --ntasks-per-node 8 -- pretrain");
  EXPECT_NE(gpus.exit_code, 0);
  EXPECT_NE(gpus.output.find("ntasks_per_node: found 8 ranks per node with gpus_per_node 4, expected one rank per GPU (4; "
                             "leave ntasks_per_node out for that): ranks would share GPUs (8 ranks on 4 GPUs)"),
            std::string::npos)
      << gpus.output;
  const JobResult idle = submit("--dry-run --gpus-per-node 8 --ntasks-per-node 2 -- pretrain");
  EXPECT_NE(idle.exit_code, 0);
  EXPECT_NE(idle.output.find("6 of 8 GPUs per node would sit idle"), std::string::npos) << idle.output;

  const JobResult resume = submit("--dry-run -- pretrain --resume runs/demo/checkpoints/step-00000004");
  EXPECT_NE(resume.exit_code, 0);
  EXPECT_NE(resume.output.find("pretrain --resume: found \"runs/demo/checkpoints/step-00000004\", expected auto"),
            std::string::npos)
      << resume.output;

  const JobResult stage = submit("--dry-run");
  EXPECT_NE(stage.exit_code, 0);
  EXPECT_NE(stage.output.find("no stage given"), std::string::npos) << stage.output;

  const JobResult config = submit("--dry-run -- pretrain --set optim.lr=-1");
  EXPECT_NE(config.exit_code, 0);
  EXPECT_NE(config.output.find("optim.lr"), std::string::npos) << config.output;

  // No sbatch on PATH: nothing written, nothing recorded.
  const JobResult missing = submit("--run-dir nosbatch -- pretrain", "PATH=/nonexistent");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("sbatch: not found on PATH"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(root_ / "nosbatch" / "slurm" / "job.sbatch"));
}

// The published config on 1x1, 1x8 and 4x8 GPUs: one rank per GPU by default, every line of
// the script as written (ROOT: the test folder, BIN: the binary).
TEST_F(SubmitCli, GpuLayoutsRunOneRankPerGpu) {
  std::ifstream paper(std::string(std::getenv("GF_SOURCE_DIR")) + "/configs/paper.json");
  ASSERT_TRUE(paper) << "configs/paper.json is missing";
  std::ofstream(root_ / "paper.json") << paper.rdbuf();
  const std::string kTemplate = R"SCRIPT(#!/bin/bash
# greenfound job script, written by `greenfound submit`; submit it again with
#   sbatch ROOT/r/slurm/job.sbatch
#
# Resources: LAYOUT, 32 CPUs (threads) per rank.
#SBATCH --job-name=gf-pretrain
#SBATCH --nodes=NODES
#SBATCH --ntasks-per-node=GPUS
#SBATCH --gpus-per-node=GPUS
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
# Preemption and time limit: SIGUSR1 to this batch shell 120 s before the limit;
# it is forwarded to every rank, the ranks checkpoint and exit with 75, and the job
# requeues itself. A requeued run appends to the same log.
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=ROOT/r/slurm/%j.out
#SBATCH --chdir=ROOT

set -u
echo "greenfound: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}, $(date -Is)"

# Environment of every rank: one thread per CPU of the task.
export OMP_NUM_THREADS=32

# bash runs a trap only between commands, so the ranks run in the background and the
# shell waits. SIGUSR1 (from --signal, `scancel --batch` or `scancel --full`) is passed on to
# the launcher, which forwards it to every rank. SIGTERM is not passed on: SLURM sends it to
# the ranks itself (preemption, scancel, time limit), and a TERM to srun would end the
# step at once; the shell only keeps waiting for the ranks' checkpoint.
step_pid=
on_signal() { interrupted=1; [ -n "$step_pid" ] && kill -USR1 "$step_pid" 2>/dev/null; }
trap on_signal USR1
trap 'interrupted=1' TERM

# One rank per task. --mpi=pmix: Debian's Open MPI has PMIx but no PMI-2. srun does not
# inherit --cpus-per-task from sbatch since SLURM 22.05, so it is passed again. No
# --kill-on-bad-exit: a rank leaving with the requeue code must not kill rank 0 while it
# writes the checkpoint (a crashed rank is caught by greenfound's collective watchdog).
# One rank per GPU: every rank sees its node's SEES and takes GPU <its local rank> (SLURM_LOCALID),
# so none sits idle and none is shared.
srun --mpi=pmix --cpus-per-task="$SLURM_CPUS_PER_TASK" \
  BIN pretrain --config ROOT/paper.json --run-dir ROOT/r --resume auto &
step_pid=$!
step_rc=
while [ -z "$step_rc" ]; do
  interrupted=0
  wait "$step_pid"
  rc=$?
  [ "$interrupted" -eq 0 ] && step_rc=$rc
done

if [ "$step_rc" -eq 75 ]; then
  # The ranks checkpointed and stopped early: back to the queue; the rerun resumes.
  echo "greenfound: ranks stopped for requeue (exit 75): requeueing job $SLURM_JOB_ID at $(date -Is)"
  scontrol requeue "$SLURM_JOB_ID" ||
    echo "greenfound: scontrol requeue $SLURM_JOB_ID failed; resubmit with: sbatch ROOT/r/slurm/job.sbatch" >&2
fi
echo "greenfound: job $SLURM_JOB_ID ranks exited with $step_rc at $(date -Is)"
exit "$step_rc"
)SCRIPT";
  struct Layout {
    std::string flags, nodes, gpus, layout, sees;
  };
  const Layout layouts[] = {
      {"", "1", "1", "1 node x 1 rank per node = 1 rank, 1 GPU per node (one rank per GPU)", "1 GPU"},
      {"--gpus-per-node 8", "1", "8", "1 node x 8 ranks per node = 8 ranks, 8 GPUs per node (one rank per GPU)", "8 GPUs"},
      {"--nodes 4 --gpus-per-node 8", "4", "8", "4 nodes x 8 ranks per node = 32 ranks, 8 GPUs per node (one rank per GPU)",
       "8 GPUs"},
  };
  auto replace_all = [](std::string text, const std::string& from, const std::string& to) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) text.replace(at, from.size(), to);
    return text;
  };
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  for (const auto& l : layouts) {
    SCOPED_TRACE(l.flags.empty() ? "paper.json as it is" : l.flags);
    const JobResult out = gf::test::run_job("cd " + root_.string() + " && env -u GREENFOUND_SITE " + bin_ +
                                            " submit --config paper.json --run-dir r --dry-run " + l.flags + " -- pretrain");
    ASSERT_EQ(out.exit_code, 0) << out.output;
    std::string expected = kTemplate;
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"LAYOUT", l.layout}, {"NODES", l.nodes}, {"GPUS", l.gpus}, {"SEES", l.sees}, {"ROOT", root_.string()}, {"BIN", bin_}})
      expected = replace_all(expected, from, to);
    std::stringstream script;
    script << std::ifstream(root_ / "r" / "slurm" / "job.sbatch").rdbuf();
    const auto got = lines(script.str()), want = lines(expected);
    for (size_t i = 0; i < std::max(got.size(), want.size()); ++i)
      EXPECT_EQ(i < got.size() ? got[i] : "<missing>", i < want.size() ? want[i] : "<extra>") << "line " << i + 1;
  }
}

}  // namespace
