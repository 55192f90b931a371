// `greenfound submit` through the binary, without a cluster: --dry-run scripts, the command
// pretrain is given, site files, and the errors raised before anything is submitted.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

struct Output {
  int rc = -1;
  std::string text;
};

Output sh(const std::string& command) {
  Output out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.text.append(buf.data(), n);
  const int status = ::pclose(pipe);
  out.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

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
  Output submit(const std::string& args, const std::string& env = "") {
    return sh("cd " + root_.string() + " && env -u GREENFOUND_SITE " + env + " " + bin_ + " submit --config demo.json " + args);
  }

  std::string bin_;
  fs::path root_;
};

TEST_F(SubmitCli, DryRunWritesThePretrainScript) {
  const Output out = submit("--dry-run --time 00:30:00 -- pretrain --max-steps 5");
  ASSERT_EQ(out.rc, 0) << out.text;
  const fs::path script = root_ / "runs" / "demo" / "slurm" / "job.sbatch";
  ASSERT_TRUE(fs::exists(script));
  std::stringstream text;
  text << std::ifstream(script).rdbuf();
  EXPECT_NE(out.text.find(text.str()), std::string::npos);  // printed as written
  EXPECT_NE(out.text.find("(dry run: not submitted)"), std::string::npos);
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
  const Output out = submit("--dry-run --run-dir r -- pretrain", "GREENFOUND_SITE=" + (root_ / "site.json").string());
  ASSERT_EQ(out.rc, 0) << out.text;
  EXPECT_NE(out.text.find("#SBATCH --partition=cpu-long\n"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("#SBATCH --account=eye-lab\n"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("module load openmpi/4.1\n"), std::string::npos) << out.text;
  // --partition on the command line wins over the site.
  const Output flag = submit("--dry-run --run-dir r --site site.json --partition debug -- pretrain");
  EXPECT_NE(flag.text.find("#SBATCH --partition=debug\n"), std::string::npos) << flag.text;
}

TEST_F(SubmitCli, ErrorsBeforeSubmitting) {
  const Output gpus = submit("--dry-run --gpus-per-node 4 --ntasks-per-node 8 -- pretrain");
  EXPECT_NE(gpus.rc, 0);
  EXPECT_NE(gpus.text.find("ntasks_per_node: found 8 ranks per node with gpus_per_node 4, expected at most one rank per GPU"),
            std::string::npos)
      << gpus.text;

  const Output resume = submit("--dry-run -- pretrain --resume runs/demo/checkpoints/step-00000004");
  EXPECT_NE(resume.rc, 0);
  EXPECT_NE(resume.text.find("pretrain --resume: found \"runs/demo/checkpoints/step-00000004\", expected auto"), std::string::npos)
      << resume.text;

  const Output stage = submit("--dry-run");
  EXPECT_NE(stage.rc, 0);
  EXPECT_NE(stage.text.find("no stage given"), std::string::npos) << stage.text;

  const Output config = submit("--dry-run -- pretrain --set optim.lr=-1");
  EXPECT_NE(config.rc, 0);
  EXPECT_NE(config.text.find("optim.lr"), std::string::npos) << config.text;

  // No sbatch on PATH: nothing written, nothing recorded.
  const Output missing = submit("--run-dir nosbatch -- pretrain", "PATH=/nonexistent");
  EXPECT_NE(missing.rc, 0);
  EXPECT_NE(missing.text.find("sbatch: not found on PATH"), std::string::npos) << missing.text;
  EXPECT_FALSE(fs::exists(root_ / "nosbatch" / "slurm" / "job.sbatch"));
}

}  // namespace
