// `greenfound pack` and `greenfound inspect DATASET` as a user runs them: exit codes, the
// one-line errors, pack-report.json, and a corrupted shard named by inspect.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/data/data_test_util.hpp"
#include "tests/support/run_job.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::run_job;

TEST(Cli, PackSkipsBadInputOrStopsWithStrict) {
  const std::string dir = test::scratch_dir("cli_pack");
  const auto folder = test::write_image_folder(dir, 6);
  std::ofstream(folder.images_dir + "/img_002.jpg", std::ios::trunc);  // zero bytes
  const std::string base = gf::test::greenfound_bin() + " pack --images " + folder.images_dir + " --labels " + folder.labels_csv +
                           " --id-column image_id --resolution 64 --shard-size 4 --split-by patient_id --test-fraction 0.4 --quiet";
  JobResult out = run_job(base + " --out " + dir + "/ds");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("packed 5 of 6 images into 2 shard(s)"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("1 problem(s)"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("img_002.jpg: found an empty file"), std::string::npos) << out.output;
  const auto report = nlohmann::json::parse(test::read_text(dir + "/ds/pack-report.json"));
  EXPECT_EQ(report["problem_counts"]["empty_file"], 1);

  out = run_job(base + " --strict --out " + dir + "/strict");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("error: "), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("--strict"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(dir + "/strict/manifest.json"));

  out = run_job(gf::test::greenfound_bin() + " inspect " + dir + "/ds");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("images: 5 (64x64, jpeg)"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("split: by patient_id"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("checksums: all 2 shards ok"), std::string::npos) << out.output;

  {
    std::fstream f(dir + "/ds/shard-00000.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir + "/ds/shard-00000.h5") / 2));
    f.put('\x33');
  }
  out = run_job(gf::test::greenfound_bin() + " inspect " + dir + "/ds");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("error: "), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("shard-00000.h5: sha256: found"), std::string::npos) << out.output;
}

}  // namespace
}  // namespace gf::data
