// `greenfound submit` through the binary, without a cluster: --dry-run scripts, the command
// pretrain is given, site files, and the errors raised before anything is submitted.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>


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
  EXPECT_NE(gpus.output.find("ntasks_per_node: found 8 ranks per node with gpus_per_node 4, expected at most one rank per GPU"),
            std::string::npos)
      << gpus.output;

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

}  // namespace
