// dist/ under real MPI jobs: each test starts `mpirun -n 2 dist_worker <scenario>` and checks
// how the job ended. Failure scenarios (a hung or killed rank) must end the whole job quickly
// with the rank and operation named; a hang would run into the 60 s the late rank sleeps.
#include <gtest/gtest.h>

#include "tests/support/run_job.hpp"

namespace {

using gf::test::run_job;

std::string worker() { return GF_DIST_WORKER; }

gf::test::JobResult run_scenario(const std::string& scenario) {
  return run_job(gf::test::mpirun(2) + worker() + " " + scenario);
}

TEST(DistMpiJob, Collectives) {
  auto job = run_scenario("collectives");
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("rank 0: collectives ok"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("rank 1: collectives ok"), std::string::npos) << job.output;
}

TEST(DistMpiJob, ReducerMatchesOneProcessWithTheWholeBatch) {
  auto job = run_scenario("reducer_equivalence");
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("rank 1: reducer equivalence ok"), std::string::npos) << job.output;
}

TEST(DistMpiJob, NoSyncAccumulationMatchesOneProcess) {
  auto job = run_scenario("reducer_no_sync");
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("no_sync accumulation ok"), std::string::npos) << job.output;
}

TEST(DistMpiJob, BucketAllReduceStartsDuringBackward) {
  auto job = run_scenario("reducer_overlap");
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("overlap ok"), std::string::npos) << job.output;
}

TEST(DistMpiJob, WatchdogAbortsAHungCollective) {
  auto job = run_scenario("watchdog");
  EXPECT_NE(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("dist watchdog: all_reduce on rank 0 of 2"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("(step 17)"), std::string::npos) << job.output;
  EXPECT_LT(job.seconds, 45) << "the job waited for the late rank instead of aborting:\n" << job.output;
}

TEST(DistMpiJob, KilledRankEndsTheJob) {
  auto job = run_scenario("kill_rank");
  EXPECT_NE(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("rank 1"), std::string::npos) << "the dead rank is not named:\n" << job.output;
  EXPECT_EQ(job.output.find("finished 1000 all-reduces"), std::string::npos) << job.output;
  EXPECT_LT(job.seconds, 45) << job.output;
}

TEST(DistSingleProcess, WorldOfOneWithoutMpirun) {
  auto job = run_job("env -u OMPI_COMM_WORLD_SIZE -u SLURM_STEP_ID -u PMIX_RANK " + worker() + " single");
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("single process ok"), std::string::npos) << job.output;
}

TEST(DistSingleProcess, LauncherMismatchIsAnErrorPrintingBoth) {
  // SLURM claims rank 1 of 2, but MPI (a singleton) has rank 0 of 1.
  auto job = run_job("env -u OMPI_COMM_WORLD_SIZE SLURM_STEP_ID=0 SLURM_PROCID=1 SLURM_LOCALID=1 SLURM_STEP_NUM_TASKS=2 " +
                     worker() + " world");
  EXPECT_EQ(job.exit_code, 1) << job.output;
  EXPECT_NE(job.output.find("MPI says rank 0 of 1"), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("SLURM says rank 1 of 2"), std::string::npos) << job.output;
}

}  // namespace
