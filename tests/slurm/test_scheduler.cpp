// Submission, job state and the rendered script's behaviour, against stand-in SLURM tools
// (small shell scripts on $PATH): no cluster needed. The real cluster is exercised by
// test_slurm_integration.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "slurm/job_spec.hpp"
#include "slurm/sbatch_script.hpp"
#include "slurm/scheduler.hpp"
#include "tests/support/temp_dir.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_tool(const fs::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/bash\n" << body << "\n";
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

// A temporary folder with bin/ (stand-in tools, put first on PATH) and run/.
class FakeSlurm : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ / "bin");
    fs::create_directories(root_ / "run");
    old_path_ = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", ((root_ / "bin").string() + ":" + old_path_).c_str(), 1);
  }
  void TearDown() override { ::setenv("PATH", old_path_.c_str(), 1); }
  gf::test::TempDir dir_{"fake-slurm"};
  fs::path root_ = dir_.path();
  std::string old_path_;
};

TEST_F(FakeSlurm, SbatchMissing) {
  ::setenv("PATH", (root_ / "bin").c_str(), 1);  // nothing there
  const std::string script = gf::slurm::write_script((root_ / "run").string(), "#!/bin/bash\n");
  try {
    gf::slurm::submit(script, (root_ / "run").string());
    FAIL() << "submitted without sbatch";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("sbatch: not found on PATH"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(gf::slurm::recorded_job_ids((root_ / "run").string()).empty());
}

TEST_F(FakeSlurm, RejectedSubmissionShowsSbatchMessage) {
  write_tool(root_ / "bin" / "sbatch",
             "echo 'sbatch: error: invalid partition specified: nosuch' >&2\n"
             "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1");
  const std::string script = gf::slurm::write_script((root_ / "run").string(), "#!/bin/bash\n");
  try {
    gf::slurm::submit(script, (root_ / "run").string());
    FAIL() << "a rejected submission was accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sbatch rejected " + script + " (exit 1): sbatch: error: invalid partition specified: nosuch"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("Invalid partition name specified"), std::string::npos) << what;
  }
  EXPECT_TRUE(gf::slurm::recorded_job_ids((root_ / "run").string()).empty());
}

TEST_F(FakeSlurm, SubmitRecordsJobIds) {
  write_tool(root_ / "bin" / "sbatch",
             "[ \"$1\" = --parsable ] || exit 9\n"
             "n=$(cat " + (root_ / "count").string() + " 2>/dev/null || echo 41); n=$((n+1)); echo $n > " +
                 (root_ / "count").string() + "\necho \"$n;cluster\"");
  const std::string run = (root_ / "run").string();
  const std::string script = gf::slurm::write_script(run, "#!/bin/bash\necho hi\n");
  EXPECT_EQ(script, run + "/slurm/job.sbatch");
  EXPECT_EQ(read_file(script), "#!/bin/bash\necho hi\n");
  EXPECT_TRUE((fs::status(script).permissions() & fs::perms::owner_exec) != fs::perms::none);
  EXPECT_EQ(gf::slurm::submit(script, run), "42");
  EXPECT_EQ(gf::slurm::submit(script, run), "43");
  EXPECT_EQ(gf::slurm::recorded_job_ids(run), (std::vector<std::string>{"42", "43"}));
  EXPECT_EQ(read_file(run + "/slurm/job_ids"), "42\n43\n");
}

TEST_F(FakeSlurm, QueryFallsBackFromSqueueToScontrolToSacct) {
  // squeue knows job 7 (an array), scontrol knows 8, sacct -c knows 9, nobody knows 10.
  write_tool(root_ / "bin" / "squeue",
             "case \" $* \" in *' 7 '*) printf '7_0|RUNNING|None|0|\\n7_1|PENDING|Priority|1|\\n'; exit 0;; esac\n"
             "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1");
  write_tool(root_ / "bin" / "scontrol",
             "case \" $* \" in\n"
             "  *' 7 '*) echo 'JobId=70 ArrayJobId=7 ArrayTaskId=0 JobState=RUNNING Reason=None Restarts=0 ExitCode=0:0';"
             " echo 'JobId=71 ArrayJobId=7 ArrayTaskId=1 JobState=PENDING Reason=Priority Restarts=1 ExitCode=0:0';;\n"
             "  *' 8 '*) echo 'JobId=8 JobName=x JobState=PENDING Reason=BeginTime Dependency=(null) Requeue=1 Restarts=1 ExitCode=0:0';;\n"
             "  *) echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1;;\n"
             "esac");
  write_tool(root_ / "bin" / "sacct",
             "case \" $* \" in\n"
             "  *' -c '*' 9 '*) echo '9|0|gf-pretrain|debug|1|vm|REQUEUED|2026-11-27T21:00:00';"
             " echo '9|0|gf-pretrain|debug|1|vm|COMPLETED|2026-11-27T21:05:00';;\n"
             "  *' -c '*) ;;\n"
             "  *) echo 'Slurm accounting storage is disabled'; exit 1;;\n"
             "esac");
  const auto array = gf::slurm::query_job("7");
  EXPECT_EQ(array.source, "squeue");
  EXPECT_EQ(array.state, "RUNNING");
  ASSERT_EQ(array.tasks.size(), 2u);
  EXPECT_EQ(array.tasks[1].job_id, "7_1");
  EXPECT_EQ(array.tasks[1].state, "PENDING");
  EXPECT_EQ(array.tasks[1].reason, "Priority");
  EXPECT_EQ(array.tasks[1].exit_code, "0:0");
  EXPECT_EQ(array.restarts, 1);

  const auto requeued = gf::slurm::query_job("8");
  EXPECT_EQ(requeued.source, "scontrol");
  EXPECT_EQ(requeued.state, "PENDING");
  EXPECT_EQ(requeued.reason, "BeginTime");
  EXPECT_EQ(requeued.restarts, 1);
  EXPECT_TRUE(requeued.tasks.empty());

  const auto finished = gf::slurm::query_job("9");
  EXPECT_EQ(finished.source, "sacct");
  EXPECT_EQ(finished.state, "COMPLETED");

  const auto unknown = gf::slurm::query_job("10");
  EXPECT_EQ(unknown.state, "UNKNOWN");
  EXPECT_EQ(unknown.source, "");
}

TEST_F(FakeSlurm, CancelAndRequeueReportFailures) {
  write_tool(root_ / "bin" / "scancel", "echo \"scancel: error: Kill job error on job id $1: Invalid job id specified\" >&2; exit 1");
  write_tool(root_ / "bin" / "scontrol", "echo \"$*\" >> " + (root_ / "calls").string());
  EXPECT_THROW(
      {
        try {
          gf::slurm::cancel("5");
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("Invalid job id specified"), std::string::npos);
          throw;
        }
      },
      std::runtime_error);
  gf::slurm::requeue("6");
  EXPECT_EQ(read_file(root_ / "calls"), "requeue 6\n");
}

// Runs the rendered script with bash, as slurmstepd would, with stand-in srun and scontrol:
// srun execs the rank command itself, scontrol logs its arguments.
class ScriptRun : public FakeSlurm {
 protected:
  void SetUp() override {
    FakeSlurm::SetUp();
    write_tool(root_ / "bin" / "srun", "while [[ $1 == --* ]]; do shift; done\nexec \"$@\"");
    write_tool(root_ / "bin" / "scontrol", "echo \"$*\" >> " + (root_ / "scontrol.log").string());
  }

  // Starts the script for `rank_body` (a bash snippet); returns the batch shell's pid.
  pid_t start(const std::string& rank_body) {
    write_tool(root_ / "rank.sh", rank_body);
    gf::slurm::JobSpec spec;
    spec.run_dir = (root_ / "run").string();
    const std::string script = gf::slurm::write_script(spec.run_dir, gf::slurm::render_sbatch(spec, {(root_ / "rank.sh").string()}));
    ::setenv("SLURM_JOB_ID", "4242", 1);
    ::setenv("SLURM_JOB_NODELIST", "vm", 1);
    ::setenv("SLURM_CPUS_PER_TASK", "1", 1);
    const std::string out = (root_ / "job.out").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> argv_s = {"/bin/bash", script};
    std::vector<char*> argv = {argv_s[0].data(), argv_s[1].data(), nullptr};
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, "/bin/bash", &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    return pid;
  }

  int wait_exit(pid_t pid) {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  bool wait_for_file(const fs::path& path) {
    for (int i = 0; i < 200 && !fs::exists(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    return fs::exists(path);
  }
};

TEST_F(ScriptRun, SignalReachesTheRankAndTheJobRequeues) {
  const fs::path ready = root_ / "ready";
  const pid_t shell = start("trap 'echo rank got USR1; exit 75' USR1\ntouch " + ready.string() +
                            "\nfor i in $(seq 1 200); do sleep 0.05; done\nexit 0");
  ASSERT_TRUE(wait_for_file(ready));
  ::kill(shell, SIGUSR1);  // what --signal=B:USR1@T and `scancel --batch` do
  EXPECT_EQ(wait_exit(shell), 75);
  const std::string log = read_file(root_ / "job.out");
  EXPECT_NE(log.find("rank got USR1"), std::string::npos) << log;
  EXPECT_NE(log.find("requeueing job 4242"), std::string::npos) << log;
  EXPECT_EQ(read_file(root_ / "scontrol.log"), "requeue 4242\n");
}

TEST_F(ScriptRun, TermKeepsTheShellWaitingForTheRanks) {
  // SLURM sends TERM to the shell and to the ranks itself; the shell must outlive the ranks'
  // checkpoint instead of dying first.
  const fs::path ready = root_ / "ready";
  const pid_t shell = start("trap 'sleep 0.3; echo rank checkpointed; exit 75' TERM\necho $$ > " + ready.string() +
                            ".tmp && mv " + ready.string() + ".tmp " + ready.string() +
                            "\nfor i in $(seq 1 200); do sleep 0.05; done\nexit 0");
  ASSERT_TRUE(wait_for_file(ready));
  const pid_t rank = std::stoi(read_file(ready));  // srun stand-in execs the rank: its own pid
  ::kill(shell, SIGTERM);
  ::kill(rank, SIGTERM);
  EXPECT_EQ(wait_exit(shell), 75);
  const std::string log = read_file(root_ / "job.out");
  EXPECT_NE(log.find("rank checkpointed"), std::string::npos) << log;
  EXPECT_EQ(read_file(root_ / "scontrol.log"), "requeue 4242\n");
}

TEST_F(ScriptRun, OtherExitCodesPassThroughWithoutRequeue) {
  const pid_t ok = start("exit 0");
  EXPECT_EQ(wait_exit(ok), 0);
  const pid_t failed = start("echo boom >&2; exit 3");
  EXPECT_EQ(wait_exit(failed), 3);
  EXPECT_FALSE(fs::exists(root_ / "scontrol.log"));
  EXPECT_NE(read_file(root_ / "job.out").find("ranks exited with 3"), std::string::npos);
}

}  // namespace
