// dist/ without an MPI job: backend selection (as on a GPU machine, without a GPU), the
// NCCL backend being built and linked, launcher variables and the cross-check.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "dist/communicator.hpp"
#include "dist/world.hpp"

namespace {

using gf::dist::Backend;

TEST(DistBackend, AutoPicksNcclForCudaTensors) {
  EXPECT_EQ(gf::dist::select_backend(Backend::kAuto, at::kCUDA), Backend::kNccl);
  EXPECT_EQ(gf::dist::select_backend(Backend::kAuto, at::kCPU), Backend::kMpi);
  EXPECT_EQ(gf::dist::select_backend(Backend::kMpi, at::kCUDA), Backend::kMpi);
  EXPECT_EQ(gf::dist::select_backend(Backend::kNccl, at::kCUDA), Backend::kNccl);
  EXPECT_THROW(gf::dist::select_backend(Backend::kNccl, at::kCPU), std::runtime_error);
}

TEST(DistBackend, ParsesConfigNames) {
  using gf::dist::kBackendNames;
  EXPECT_EQ(gf::base::parse_enum("auto", kBackendNames, "", "dist.backend"), Backend::kAuto);
  EXPECT_EQ(gf::base::parse_enum("nccl", kBackendNames, "", "dist.backend"), Backend::kNccl);
  EXPECT_EQ(gf::dist::backend_name(Backend::kMpi), "mpi");
  try {
    gf::base::parse_enum("gloo", kBackendNames, "run.json", "dist.backend");
    FAIL() << "gloo accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "run.json: dist.backend: found \"gloo\", expected auto, mpi or nccl");
  }
}

// Every build carries the NCCL backend: asking for it reaches NCCL's constructor, which on a
// machine without a GPU stops at the device count.
TEST(DistBackend, NcclBackendIsBuiltAndLinked) {
  gf::dist::World world;
  gf::dist::CommunicatorOptions options;
  options.device = at::kCUDA;
  try {
    auto comm = gf::dist::make_communicator(Backend::kNccl, world, options);
    EXPECT_EQ(comm->backend(), Backend::kNccl);  // a machine with a GPU
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("dist (nccl)"), std::string::npos) << e.what();
  }
}

TEST(DistWorld, CrossCheckNamesBothViews) {
  gf::dist::World world;
  world.rank = 1;
  world.size = 2;
  world.local_rank = 1;
  world.local_size = 2;
  world.host = "node7";
  EXPECT_NO_THROW(gf::dist::cross_check(world, {"Open MPI", 1, 2, 1, 2}));
  EXPECT_NO_THROW(gf::dist::cross_check(world, {"SLURM", 1, 2, 1, -1}));  // -1: not said
  try {
    gf::dist::cross_check(world, {"SLURM", 3, 4, 1, 2});
    FAIL() << "mismatch accepted";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("MPI says rank 1 of 2, local rank 1 of 2"), std::string::npos) << message;
    EXPECT_NE(message.find("SLURM says rank 3 of 4, local rank 1 of 2"), std::string::npos) << message;
    EXPECT_NE(message.find("node7"), std::string::npos) << message;
  }
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) setenv(name, value, 1); else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1); else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(DistWorld, ReadsTheLauncherThatStartedTheProcess) {
  ScopedEnv ompi("OMPI_COMM_WORLD_SIZE", nullptr), step("SLURM_STEP_ID", nullptr);
  EXPECT_FALSE(gf::dist::launcher_view_from_env().has_value());
  {
    // A batch script's shell: SLURM variables but no step, so not a task.
    ScopedEnv procid("SLURM_PROCID", "0"), ntasks("SLURM_NTASKS", "8");
    EXPECT_FALSE(gf::dist::launcher_view_from_env().has_value());
  }
  ScopedEnv step2("SLURM_STEP_ID", "0"), procid("SLURM_PROCID", "5"), local("SLURM_LOCALID", "1"),
      ntasks("SLURM_STEP_NUM_TASKS", "6"), node("SLURM_NODEID", "2"), per_node("SLURM_STEP_TASKS_PER_NODE", "2(x2),3");
  auto view = gf::dist::launcher_view_from_env();
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->source, "SLURM");
  EXPECT_EQ(view->rank, 5);
  EXPECT_EQ(view->size, 6);
  EXPECT_EQ(view->local_rank, 1);
  EXPECT_EQ(view->local_size, 3);
  ScopedEnv osize("OMPI_COMM_WORLD_SIZE", "4"), orank("OMPI_COMM_WORLD_RANK", "2"),
      olr("OMPI_COMM_WORLD_LOCAL_RANK", "0"), ols("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  view = gf::dist::launcher_view_from_env();  // mpirun inside an allocation: Open MPI's view wins
  EXPECT_EQ(view->source, "Open MPI");
  EXPECT_EQ(view->rank, 2);
  EXPECT_EQ(view->size, 4);
  ScopedEnv bad("OMPI_COMM_WORLD_RANK", "two");
  EXPECT_THROW(gf::dist::launcher_view_from_env(), std::runtime_error);
}

}  // namespace
