// `greenfound pack` and `greenfound inspect DATASET` as a user runs them: exit codes, the
// one-line errors, pack-report.json, and a corrupted shard named by inspect.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/data/data_test_util.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;

TEST(Cli, PackSkipsBadInputOrStopsWithStrict) {
  const std::string dir = test::scratch_dir("cli_pack");
  const auto folder = test::write_image_folder(dir, 6);
  std::ofstream(folder.images_dir + "/img_002.jpg", std::ios::trunc);  // zero bytes
  const std::string base = test::greenfound_bin() + " pack --images " + folder.images_dir + " --labels " + folder.labels_csv +
                           " --id-column image_id --resolution 64 --shard-size 4 --split-by patient_id --test-fraction 0.4 --quiet";
  std::string out;
  ASSERT_EQ(test::run(base + " --out " + dir + "/ds", &out), 0) << out;
  EXPECT_NE(out.find("packed 5 of 6 images into 2 shard(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("1 problem(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("img_002.jpg: found an empty file"), std::string::npos) << out;
  const auto report = nlohmann::json::parse(test::read_text(dir + "/ds/pack-report.json"));
  EXPECT_EQ(report["problem_counts"]["empty_file"], 1);

  EXPECT_NE(test::run(base + " --strict --out " + dir + "/strict", &out), 0);
  EXPECT_NE(out.find("error: "), std::string::npos) << out;
  EXPECT_NE(out.find("--strict"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir + "/strict/manifest.json"));

  ASSERT_EQ(test::run(test::greenfound_bin() + " inspect " + dir + "/ds", &out), 0) << out;
  EXPECT_NE(out.find("images: 5 (64x64, jpeg)"), std::string::npos) << out;
  EXPECT_NE(out.find("split: by patient_id"), std::string::npos) << out;
  EXPECT_NE(out.find("checksums: all 2 shards ok"), std::string::npos) << out;

  {
    std::fstream f(dir + "/ds/shard-00000.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir + "/ds/shard-00000.h5") / 2));
    f.put('\x33');
  }
  EXPECT_NE(test::run(test::greenfound_bin() + " inspect " + dir + "/ds", &out), 0);
  EXPECT_NE(out.find("error: "), std::string::npos) << out;
  EXPECT_NE(out.find("shard-00000.h5: sha256: found"), std::string::npos) << out;
}

}  // namespace
}  // namespace gf::data
