// Rendered sbatch scripts, checked line by line: every #SBATCH directive in order, and the
// lines of the body that start ranks, forward the signal and requeue.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "slurm/job_spec.hpp"
#include "slurm/sbatch_script.hpp"

namespace {

using gf::slurm::JobSpec;
using gf::slurm::render_sbatch;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> directives(const std::string& script) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(script))
    if (line.rfind("#SBATCH", 0) == 0) out.push_back(line);
  return out;
}

bool has_line(const std::string& script, const std::string& line) {
  for (const auto& l : lines_of(script))
    if (l == line) return true;
  return false;
}

// bash -n: the script parses.
void expect_bash_syntax_ok(const std::string& script) {
  const auto path = std::filesystem::temp_directory_path() / ("gf_sbatch_syntax_" + std::to_string(::getpid()) + ".sh");
  std::ofstream(path) << script;
  const int rc = std::system(("bash -n " + path.string()).c_str());
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << script;
}

const std::vector<std::string> kCommand = {"/opt/gf/greenfound", "pretrain", "--config", "/cfg/demo.json", "--run-dir",
                                           "/runs/a", "--resume", "auto"};

JobSpec base_spec() {
  JobSpec spec;
  spec.run_dir = "/runs/a";
  spec.work_dir = "/home/me/project";
  return spec;
}

TEST(SbatchScript, OneNodeOneGpu) {
  JobSpec spec = base_spec();
  spec.gpus_per_node = 1;
  spec.cpus_per_task = 8;
  spec.time = "02:00:00";
  spec.partition = "gpu";
  const std::string script = render_sbatch(spec, kCommand);
  const std::vector<std::string> expected = {
      "#SBATCH --job-name=greenfound",
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --gpus-per-node=1",
      "#SBATCH --cpus-per-task=8",
      "#SBATCH --time=02:00:00",
      "#SBATCH --partition=gpu",
      "#SBATCH --signal=B:USR1@120",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=/runs/a/slurm/%j.out",
      "#SBATCH --chdir=/home/me/project",
  };
  EXPECT_EQ(directives(script), expected);
  EXPECT_EQ(lines_of(script).front(), "#!/bin/bash");
  EXPECT_TRUE(has_line(script, "# Resources: 1 node x 1 rank per node = 1 rank, 1 GPU per node (one rank per GPU), 8 CPUs (threads) per rank."));
  EXPECT_TRUE(has_line(script, "export OMP_NUM_THREADS=8"));
  EXPECT_TRUE(has_line(script, "srun --mpi=pmix --cpus-per-task=\"$SLURM_CPUS_PER_TASK\" \\"));
  EXPECT_TRUE(has_line(script, "  /opt/gf/greenfound pretrain --config /cfg/demo.json --run-dir /runs/a --resume auto &"));
  EXPECT_TRUE(has_line(script, "on_signal() { interrupted=1; [ -n \"$step_pid\" ] && kill -USR1 \"$step_pid\" 2>/dev/null; }"));
  EXPECT_TRUE(has_line(script, "trap on_signal USR1"));
  EXPECT_TRUE(has_line(script, "trap 'interrupted=1' TERM"));
  EXPECT_TRUE(has_line(script, "step_pid=$!"));
  EXPECT_TRUE(has_line(script, "if [ \"$step_rc\" -eq 75 ]; then"));
  EXPECT_TRUE(has_line(script, "  scontrol requeue \"$SLURM_JOB_ID\" ||"));
  EXPECT_TRUE(has_line(script, "exit \"$step_rc\""));
  EXPECT_EQ(script.find("mpirun"), std::string::npos);
  EXPECT_EQ(script.find("module load"), std::string::npos);
  expect_bash_syntax_ok(script);
}

TEST(SbatchScript, FourNodesEightGpus) {
  JobSpec spec = base_spec();
  spec.job_name = "gf-pretrain";
  spec.nodes = 4;
  spec.ntasks_per_node = 8;
  spec.gpus_per_node = 8;
  spec.gpu_type = "a100";
  spec.cpus_per_task = 12;
  spec.mem = "480G";
  spec.time = "1-12:00:00";
  spec.partition = "gpu";
  spec.account = "retina";
  spec.signal_seconds = 300;
  const std::string script = render_sbatch(spec, kCommand);
  const std::vector<std::string> expected = {
      "#SBATCH --job-name=gf-pretrain",
      "#SBATCH --nodes=4",
      "#SBATCH --ntasks-per-node=8",
      "#SBATCH --gpus-per-node=a100:8",
      "#SBATCH --cpus-per-task=12",
      "#SBATCH --mem=480G",
      "#SBATCH --time=1-12:00:00",
      "#SBATCH --partition=gpu",
      "#SBATCH --account=retina",
      "#SBATCH --signal=B:USR1@300",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=/runs/a/slurm/%j.out",
      "#SBATCH --chdir=/home/me/project",
  };
  EXPECT_EQ(directives(script), expected);
  EXPECT_TRUE(has_line(script, "# Resources: 4 nodes x 8 ranks per node = 32 ranks, 8 a100 GPUs per node (one rank per GPU), 12 CPUs (threads) per rank."));
  EXPECT_TRUE(has_line(script, "export OMP_NUM_THREADS=12"));
  EXPECT_TRUE(has_line(script, "srun --mpi=pmix --cpus-per-task=\"$SLURM_CPUS_PER_TASK\" \\"));
  expect_bash_syntax_ok(script);
}

TEST(SbatchScript, CpuOnlyWithMpirun) {
  JobSpec spec = base_spec();
  spec.nodes = 2;
  spec.ntasks_per_node = 4;
  spec.cpus_per_task = 4;
  spec.time = "30:00";
  spec.launcher = gf::slurm::RankLauncher::kMpirun;
  spec.environment = {{"GREENFOUND_LOG", "plain text"}};
  const std::string script = render_sbatch(spec, kCommand);
  const std::vector<std::string> expected = {
      "#SBATCH --job-name=greenfound",
      "#SBATCH --nodes=2",
      "#SBATCH --ntasks-per-node=4",
      "#SBATCH --cpus-per-task=4",
      "#SBATCH --time=30:00",
      "#SBATCH --signal=B:USR1@120",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=/runs/a/slurm/%j.out",
      "#SBATCH --chdir=/home/me/project",
  };
  EXPECT_EQ(directives(script), expected);
  EXPECT_EQ(script.find("--gpus"), std::string::npos);
  EXPECT_TRUE(has_line(script, "# Resources: 2 nodes x 4 ranks per node = 8 ranks, CPU only, 4 CPUs (threads) per rank."));
  EXPECT_TRUE(has_line(script, "export OMP_NUM_THREADS=4"));
  EXPECT_TRUE(has_line(script, "export GREENFOUND_LOG='plain text'"));
  EXPECT_TRUE(has_line(script, "if [ \"$(id -u)\" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi"));
  EXPECT_TRUE(has_line(script,
                       "mpirun -np \"$SLURM_NTASKS\" --map-by ppr:4:node --bind-to none -x OMP_NUM_THREADS -x GREENFOUND_LOG \\"));
  for (const auto& line : lines_of(script)) EXPECT_NE(line.rfind("srun", 0), 0u) << line;
  expect_bash_syntax_ok(script);
}

TEST(SbatchScript, ArraySweepOneTaskPerPair) {
  JobSpec spec = base_spec();
  spec.job_name = "gf-embed";
  spec.cpus_per_task = 2;
  spec.array_tasks = {{"--weights", "green.safetensors", "--data", "packs/idrid", "--out", "/runs/a/embeddings/green/idrid.h5"},
                      {"--weights", "my dinov2.pth", "--data", "packs/idrid", "--out", "/runs/a/embeddings/dinov2/idrid.h5"}};
  spec.array_throttle = 1;
  const std::string script = render_sbatch(spec, {"/opt/gf/greenfound", "embed", "--split", "all"});
  const std::vector<std::string> expected = {
      "#SBATCH --job-name=gf-embed",
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks-per-node=1",
      "#SBATCH --cpus-per-task=2",
      "#SBATCH --time=01:00:00",
      "#SBATCH --array=0-1%1",
      "#SBATCH --signal=B:USR1@120",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=/runs/a/slurm/%A_%a.out",
      "#SBATCH --chdir=/home/me/project",
  };
  EXPECT_EQ(directives(script), expected);
  EXPECT_TRUE(has_line(script, "case \"$SLURM_ARRAY_TASK_ID\" in"));
  EXPECT_TRUE(has_line(script,
                       "  0) task_args=(--weights green.safetensors --data packs/idrid --out /runs/a/embeddings/green/idrid.h5) ;;"));
  EXPECT_TRUE(has_line(script,
                       "  1) task_args=(--weights 'my dinov2.pth' --data packs/idrid --out /runs/a/embeddings/dinov2/idrid.h5) ;;"));
  EXPECT_TRUE(has_line(script, "  /opt/gf/greenfound embed --split all \"${task_args[@]}\" &"));
  expect_bash_syntax_ok(script);
}

TEST(SbatchScript, CommandThatStartsItsOwnRanksRunsInTheBatchShell) {
  // `greenfound sweep --slurm`: each task's sweep process runs its stages' ranks as srun steps.
  JobSpec spec = base_spec();
  spec.ntasks_per_node = 2;
  spec.command_starts_ranks = true;
  spec.array_tasks = {{"--run", "a"}, {"--run", "b"}};
  const std::string script = render_sbatch(spec, {"/opt/gf/greenfound", "sweep", "/s.json", "--out", "/runs/a"});
  EXPECT_TRUE(has_line(script, "#SBATCH --ntasks-per-node=2"));
  EXPECT_TRUE(has_line(script, "/opt/gf/greenfound sweep /s.json --out /runs/a \"${task_args[@]}\" &"));
  for (const auto& line : lines_of(script))
    EXPECT_TRUE(line.rfind("srun", 0) != 0 && line.rfind("mpirun", 0) != 0) << "the batch shell starts ranks: " << line;
  EXPECT_TRUE(has_line(script, "on_signal() { interrupted=1; [ -n \"$step_pid\" ] && kill -USR1 \"$step_pid\" 2>/dev/null; }"));
  // This task only: its SLURM_JOB_ID may be the array's own id, which would requeue them all.
  EXPECT_TRUE(has_line(script, "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\" ||"));
  expect_bash_syntax_ok(script);
}

TEST(SbatchScript, PlainArraySpecKeepsTheCommand) {
  JobSpec spec = base_spec();
  spec.array = "0-9%2";
  const std::string script = render_sbatch(spec, {"/opt/gf/greenfound", "embed"});
  EXPECT_TRUE(has_line(script, "#SBATCH --array=0-9%2"));
  EXPECT_TRUE(has_line(script, "#SBATCH --output=/runs/a/slurm/%A_%a.out"));
  EXPECT_TRUE(has_line(script, "  /opt/gf/greenfound embed &"));
  EXPECT_EQ(script.find("task_args"), std::string::npos);
}

TEST(SbatchScript, SiteDefaultsUnderTheConfig) {
  const nlohmann::json site = {{"partition", "gpu-a100"},
                               {"account", "site-default"},
                               {"gpu_type", "a100"},
                               {"modules", {"cuda/12.1", "openmpi/4.1.5"}},
                               {"extra_sbatch", {"--qos=normal", "--constraint=ib"}},
                               {"environment", {{"NCCL_IB_HCA", "mlx5"}, {"NCCL_DEBUG", "WARN"}}}};
  const nlohmann::json config = {{"gpus_per_node", 4},
                                 {"ntasks_per_node", 4},
                                 {"account", "retina"},
                                 {"time", "12:00:00"},
                                 {"signal", "USR2"},
                                 {"signal_seconds", 600},
                                 {"environment", {{"NCCL_DEBUG", "INFO"}}}};
  JobSpec spec = base_spec();
  gf::slurm::apply_layer(spec, gf::slurm::job_spec_layer_from_json(site, "", "site.json"));
  gf::slurm::apply_layer(spec, gf::slurm::job_spec_layer_from_json(config, "slurm", "run.json"));
  const std::string script = render_sbatch(spec, kCommand);
  const std::vector<std::string> expected = {
      "#SBATCH --job-name=greenfound",
      "#SBATCH --nodes=1",
      "#SBATCH --ntasks-per-node=4",
      "#SBATCH --gpus-per-node=a100:4",
      "#SBATCH --cpus-per-task=1",
      "#SBATCH --time=12:00:00",
      "#SBATCH --partition=gpu-a100",
      "#SBATCH --account=retina",
      "#SBATCH --signal=B:USR2@600",
      "#SBATCH --requeue",
      "#SBATCH --open-mode=append",
      "#SBATCH --output=/runs/a/slurm/%j.out",
      "#SBATCH --chdir=/home/me/project",
      "#SBATCH --qos=normal",
      "#SBATCH --constraint=ib",
  };
  EXPECT_EQ(directives(script), expected);
  EXPECT_TRUE(has_line(script, "module load cuda/12.1"));
  EXPECT_TRUE(has_line(script, "module load openmpi/4.1.5"));
  EXPECT_LT(script.find("module load cuda/12.1"), script.find("module load openmpi/4.1.5"));
  EXPECT_TRUE(has_line(script, "export NCCL_DEBUG=INFO"));  // the config wins, key by key
  EXPECT_TRUE(has_line(script, "export NCCL_IB_HCA=mlx5"));
  EXPECT_TRUE(has_line(script, "trap on_signal USR2"));
  EXPECT_TRUE(has_line(script, "trap 'interrupted=1' TERM"));
  expect_bash_syntax_ok(script);
}

TEST(SbatchScript, RequeueOffSaysHowToResubmit) {
  JobSpec spec = base_spec();
  spec.requeue = false;
  const std::string script = render_sbatch(spec, kCommand);
  EXPECT_TRUE(has_line(script, "#SBATCH --no-requeue"));
  EXPECT_EQ(script.find("scontrol requeue"), std::string::npos);
  EXPECT_NE(script.find("requeue is off; resubmit with: sbatch /runs/a/slurm/job.sbatch"), std::string::npos);
  expect_bash_syntax_ok(script);
}

TEST(ShellQuote, QuotesOnlyWhatNeedsIt) {
  using gf::slurm::shell_quote;
  EXPECT_EQ(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
  EXPECT_EQ(shell_quote("model=a.h5"), "model=a.h5");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
}

}  // namespace
