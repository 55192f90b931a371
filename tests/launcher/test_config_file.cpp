// Run configs on disk: `--set section.key=value` reaches every field of the schema whether
// or not the file names its section, and a misspelt one is an error of the schema.
#include <gtest/gtest.h>

#include <string>

#include "launcher/config_file.hpp"
#include "tests/support/environment.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {
namespace {

train::RunConfig demo_with(const std::vector<std::string>& sets) {
  const std::string path = gf::test::source_dir() + "/configs/demo.json";
  return train::parse_run_config(load_config(path, sets), path);
}

TEST(ConfigFile, SetReachesSectionsTheFileLeavesOut) {
  const nlohmann::json demo = load_config(gf::test::source_dir() + "/configs/demo.json", {});
  ASSERT_FALSE(demo.contains("dist")) << "the demo config grew a dist section: pick another one for this test";
  const train::RunConfig config = demo_with({"dist.timeout_s=10", "dist.backend=mpi", "energy.pue=1.3", "slurm.nodes=2"});
  EXPECT_DOUBLE_EQ(config.dist.timeout_s, 10);
  EXPECT_EQ(config.dist.backend, dist::Backend::kMpi);
  EXPECT_DOUBLE_EQ(config.energy.pue, 1.3);
  EXPECT_EQ(config.slurm.values.nodes, 2);
  EXPECT_EQ(config.slurm.given.count("nodes"), 1u);
}

TEST(ConfigFile, SetOfAFieldOutsideTheSchemaIsAnError) {
  try {
    demo_with({"dist.timeout=10"});
    FAIL() << "a misspelt field was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("dist.timeout: unknown field"), std::string::npos) << e.what();
  }
  EXPECT_THROW(demo_with({"nosuchsection.key=1"}), std::exception);
  EXPECT_THROW(demo_with({"model.arch.x=1"}), std::exception);  // a value is no section
  EXPECT_THROW(demo_with({"dist.timeout_s"}), std::exception);  // no '='
}

}  // namespace
}  // namespace gf::launcher
