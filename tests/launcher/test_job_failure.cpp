// launch's one-line diagnosis of a failed multi-rank job, from the lines Open MPI 4.1,
// SLURM 22.05 and the ranks' watchdog print (copied from real failures on the test cluster).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "launcher/job_failure.hpp"

namespace {

using gf::launcher::JobFailure;

std::string summary_of(const std::vector<std::string>& lines, std::vector<std::pair<std::string, int>> hosts = {}) {
  JobFailure failure(std::move(hosts));
  for (const auto& line : lines) failure.add_line(line);
  return failure.summary();
}

TEST(JobFailure, KilledRanksOfAHost) {
  EXPECT_EQ(summary_of({"  Local host: gf-h1",
                        "greenfound[rank 2]: dist watchdog: barrier on rank 2 of 4 (host gf-h2) still waiting after 0.9 s, "
                        "past signal 15 (step 4): a peer rank may have died or hang",
                        "greenfound[rank 0]: dist watchdog: all_reduce on rank 0 of 4 (host gf-h1) still waiting after 3.5 s, "
                        "past signal 15 (step 5): a peer rank may have died or hang",
                        "mpirun noticed that process rank 3 with PID 31377 on node gf-h2 exited on signal 9 (Killed)."},
                       {{"gf-h1", 2}, {"gf-h2", 2}}),
            "host gf-h2 (ranks 2-3) failed: rank 3 exited on signal 9, Killed; the job stopped in all_reduce at step 5 "
            "(rank 0 on host gf-h1 waited 3.5 s)");
}

TEST(JobFailure, LostHost) {
  EXPECT_EQ(summary_of({"ORTE has lost communication with a remote daemon.", "  HNP daemon   : [[19320,0],0] on node vm",
                        "  Remote daemon: [[19320,0],2] on node gf-h2",
                        "greenfound[rank 1]: error: dist watchdog: all_reduce on rank 1 of 4 (host gf-h1) did not finish "
                        "within 10 s (step 26): a peer rank died or hangs; aborting the job"},
                       {{"gf-h1", 2}, {"gf-h2", 2}}),
            "host gf-h2 (ranks 2-3) failed: mpirun lost contact with it; the job stopped in all_reduce at step 26 "
            "(rank 1 on host gf-h1 waited 10 s)");
}

TEST(JobFailure, SrunReports) {
  EXPECT_EQ(summary_of({"srun: error: Node failure on gf-h2", "srun: error: gf-h1: task 0: Terminated"}),
            "host gf-h2 failed: node failure");
  EXPECT_EQ(summary_of({"srun: error: node7: tasks 4-5: Killed"}), "host node7 (ranks 4-5) failed: rank(s) 4-5: Killed");
}

TEST(JobFailure, OnlyAWatchdogOrNothing) {
  EXPECT_EQ(summary_of({"greenfound[rank 0]: error: dist watchdog: all_reduce on rank 0 of 2 (host vm) did not finish within "
                        "2 s (step 17): a peer rank died or hangs; aborting the job"}),
            "the job stopped in all_reduce at step 17 (rank 0 on host vm waited 2 s): a peer rank died or hangs");
  EXPECT_EQ(summary_of({"greenfound: error: data.path: found \"\"", "mpirun detected that one or more processes exited"}), "");
}

}  // namespace
