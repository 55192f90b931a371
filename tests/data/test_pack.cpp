// `pack`: labels typing, patient-level split, bad input, reproducible shards, and resume.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "data/dataset.hpp"
#include "data/image_codec.hpp"
#include "data/pack.hpp"
#include "tests/data/data_test_util.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

PackOptions options_for(const test::ImageFolder& folder, const std::string& out) {
  PackOptions o;
  o.images_dir = folder.images_dir;
  o.labels_csv = folder.labels_csv;
  o.id_column = "image_id";
  o.out_dir = out;
  o.resolution = 64;
  o.shard_size = 4;
  o.threads = 2;
  o.show_progress = false;
  return o;
}

std::set<std::string> problem_kinds(const PackResult& r) {
  std::set<std::string> kinds;
  for (const auto& p : r.problems) kinds.insert(p.kind);
  return kinds;
}

TEST(Pack, LabelsAreTypedAndSplitIsPatientLevel) {
  const std::string dir = test::scratch_dir("pack_labels");
  const auto folder = test::write_image_folder(dir, 12);
  PackOptions o = options_for(folder, dir + "/ds");
  o.split_by = "patient_id";
  o.test_fraction = 0.34;
  o.seed = 7;
  const PackResult r = pack(o);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(r.packed, 12);
  EXPECT_EQ(r.manifest.shards.size(), 3u);  // 4 + 4 + 4

  const auto ds = Dataset::open(dir + "/ds");
  EXPECT_EQ(ds->size(), 12);
  EXPECT_EQ(ds->ids(), folder.ids);
  EXPECT_EQ(ds->label_column("grade").type, LabelType::kInteger);
  EXPECT_EQ(ds->label_column("dme").type, LabelType::kYesNo);
  EXPECT_EQ(ds->label_column("site").type, LabelType::kCategory);
  EXPECT_EQ(ds->label_column("site").categories, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(ds->label_column("cdr").type, LabelType::kFloat);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(ds->int_labels("grade")[i], i % 5);
    EXPECT_EQ(ds->int_labels("dme")[i], i % 4 == 0 ? 1 : 0);
    EXPECT_EQ(ds->int_labels("site")[i], i % 3);
    const double cdr = ds->float_labels("cdr")[i];
    if (i % 7 == 0) {
      EXPECT_TRUE(std::isnan(cdr));
    } else {
      EXPECT_DOUBLE_EQ(cdr, 0.3 + 0.01 * i);
    }
  }
  // 6 patients, ceil(0.34 x 6) = 3 in test; both eyes of a patient on the same side.
  const auto test_ids = ds->split_indices("test");
  const auto train_ids = ds->split_indices("train");
  EXPECT_EQ(test_ids.size(), 6u);
  EXPECT_EQ(train_ids.size() + test_ids.size(), 12u);
  const auto& patients = ds->int_labels("patient_id");  // "P0".."P5": text categories
  std::set<int64_t> test_patients, train_patients;
  for (auto i : test_ids) test_patients.insert(patients[i]);
  for (auto i : train_ids) train_patients.insert(patients[i]);
  for (auto p : test_patients) EXPECT_EQ(train_patients.count(p), 0u) << "patient on both sides";
  EXPECT_EQ(ds->manifest().split.test_count, 6);

  // Same seed -> same split; another seed -> (here) another one.
  PackOptions again = o;
  again.out_dir = dir + "/ds_again";
  pack(again);
  EXPECT_EQ(Dataset::open(again.out_dir)->split_indices("test"), test_ids);
  PackOptions other = o;
  other.out_dir = dir + "/ds_other";
  other.seed = 8;
  pack(other);
  EXPECT_NE(Dataset::open(other.out_dir)->split_indices("test"), test_ids);
}

TEST(Pack, ShardsAreByteIdenticalWhateverTheThreadCount) {
  const std::string dir = test::scratch_dir("pack_reproducible");
  const auto folder = test::write_image_folder(dir, 9);
  PackOptions one = options_for(folder, dir + "/one");
  one.threads = 1;
  PackOptions four = options_for(folder, dir + "/four");
  four.threads = 4;
  const PackResult a = pack(one), b = pack(four);
  ASSERT_EQ(a.manifest.shards.size(), b.manifest.shards.size());
  for (size_t s = 0; s < a.manifest.shards.size(); ++s) EXPECT_EQ(a.manifest.shards[s].sha256, b.manifest.shards[s].sha256);
}

TEST(Pack, BadInputIsCountedListedAndSkipped) {
  const std::string dir = test::scratch_dir("pack_bad");
  const auto folder = test::write_image_folder(dir, 8);
  const fs::path images(folder.images_dir);
  // A truncated JPEG, a zero-byte file, a 16-bit PNG, a duplicate id in a subfolder, an image
  // without a CSV row; the CSV also lists an image that does not exist and a duplicate row.
  std::string jpeg = test::read_text((images / "img_001.jpg").string());
  std::ofstream((images / "img_001.jpg").string(), std::ios::binary).write(jpeg.data(), static_cast<std::streamsize>(jpeg.size() / 2));
  std::ofstream((images / "img_002.jpg").string(), std::ios::binary | std::ios::trunc);
  fs::remove(images / "img_003.jpg");
  cv::Mat deep;
  test::fundus_like(3, cv::Size(100, 80)).convertTo(deep, CV_16UC3, 257.0);
  ASSERT_TRUE(cv::imwrite((images / "img_003.png").string(), deep));
  fs::create_directories(images / "more");
  fs::copy_file(images / "img_004.jpg", images / "more" / "img_004.jpg");
  cv::imwrite((images / "stray.jpg").string(), test::fundus_like(50, cv::Size(90, 90)));
  std::ofstream(folder.labels_csv, std::ios::app) << "ghost,P99,1,no,A,0.5\nimg_005,P2,2,no,B,0.4\n";

  const PackResult r = pack(options_for(folder, dir + "/ds"));
  const std::set<std::string> expected = {"truncated_image", "empty_file", "not_8bit", "duplicate_id", "image_without_row",
                                          "row_without_image"};
  EXPECT_EQ(problem_kinds(r), expected);
  EXPECT_EQ(r.packed, 5);  // 8 - truncated - empty - 16-bit
  const json report = json::parse(test::read_text(dir + "/ds/pack-report.json"));
  EXPECT_EQ(report["packed"], 5);
  EXPECT_EQ(report["problem_counts"]["duplicate_id"], 2);  // the subfolder copy and the repeated CSV row
  EXPECT_EQ(report["problems"].size(), r.problems.size());
  const auto ds = Dataset::open(dir + "/ds");
  EXPECT_EQ(ds->ids(), (std::vector<std::string>{"img_000", "img_004", "img_005", "img_006", "img_007"}));

  PackOptions strict = options_for(folder, dir + "/strict");
  strict.bad_input = BadInputPolicy::kStop;
  EXPECT_THROW(pack(strict), std::runtime_error);
  EXPECT_FALSE(is_dataset_dir(dir + "/strict"));
}

TEST(Pack, PreprocessNoneKeepsEachImageAsRead) {
  // An evaluation set as the published evaluation embedded it: no border crop, no padding,
  // no resize; png keeps every decoded pixel.
  const std::string dir = test::scratch_dir("pack_none");
  const auto folder = test::write_image_folder(dir, 3);
  PackOptions o = options_for(folder, dir + "/ds");
  o.preprocessing = PackPreprocessing::kNone;
  o.encoding = Encoding::kPng;
  const PackResult r = pack(o);
  ASSERT_EQ(r.packed, 3);
  EXPECT_NE(r.manifest.preprocessing_json.find("none"), std::string::npos) << r.manifest.preprocessing_json;
  const auto ds = Dataset::open(dir + "/ds");
  for (int64_t i = 0; i < 3; ++i) {
    const cv::Mat original = read_image_file(folder.images_dir + "/" + folder.ids[static_cast<size_t>(i)] + ".jpg");
    const cv::Mat packed = ds->decode(i);
    ASSERT_EQ(packed.size(), original.size());
    EXPECT_EQ(cv::norm(packed, original, cv::NORM_INF), 0) << i;
  }
  o.encoding = Encoding::kRaw;
  o.out_dir = dir + "/raw";
  EXPECT_THROW(pack(o), std::runtime_error);
}

TEST(Pack, CsvWithoutTheIdColumnIsAnError) {
  const std::string dir = test::scratch_dir("pack_no_id");
  const auto folder = test::write_image_folder(dir, 2);
  PackOptions o = options_for(folder, dir + "/ds");
  o.id_column = "filename";
  try {
    pack(o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("expected an id column 'filename'"), std::string::npos) << e.what();
  }
}

TEST(Pack, InterruptedRunResumesAndOtherOptionsStartClean) {
  const std::string dir = test::scratch_dir("pack_resume");
  const auto folder = test::write_image_folder(dir, 10);
  const PackOptions o = options_for(folder, dir + "/ds");
  const PackResult full = pack(o);
  ASSERT_EQ(full.manifest.shards.size(), 3u);  // 4 + 4 + 2

  // Rebuild the state an interruption during shard 2 leaves: two finished shards recorded in
  // pack-state.json, a half-written temporary, no manifest.
  json state = {{"plan_sha256", full.manifest.plan_sha256}, {"shards", json::array()}};
  for (int s = 0; s < 2; ++s) {
    const ShardInfo& info = full.manifest.shards[s];
    state["shards"].push_back({{"file", info.file}, {"count", info.count}, {"first_index", info.first_index}, {"bytes", info.bytes},
                               {"sha256", info.sha256}, {"input_end", 4 * (s + 1)}, {"train", 4}, {"test", 0}, {"fallback", 0},
                               {"sources", {{"images", 4}}}, {"problems", json::array()}});
  }
  fs::remove(dir + "/ds/manifest.json");
  fs::remove(dir + "/ds/" + full.manifest.shards[2].file);
  std::ofstream(dir + "/ds/pack-state.json") << state.dump();
  std::ofstream(dir + "/ds/shard-00002.h5.tmp") << "half a shard";
  const auto before = fs::last_write_time(dir + "/ds/shard-00000.h5");

  const PackResult resumed = pack(o);
  EXPECT_EQ(resumed.resumed_shards, 2);
  EXPECT_EQ(fs::last_write_time(dir + "/ds/shard-00000.h5"), before);  // kept, not rewritten
  ASSERT_EQ(resumed.manifest.shards.size(), 3u);
  for (size_t s = 0; s < 3; ++s) EXPECT_EQ(resumed.manifest.shards[s].sha256, full.manifest.shards[s].sha256);
  EXPECT_FALSE(fs::exists(dir + "/ds/shard-00002.h5.tmp"));
  EXPECT_FALSE(fs::exists(dir + "/ds/pack-state.json"));

  // Complete and unchanged: nothing to do.
  const PackResult again = pack(o);
  EXPECT_EQ(again.packed, 10);
  EXPECT_EQ(fs::last_write_time(dir + "/ds/shard-00000.h5"), before);

  // Another resolution: the finished dataset is not replaced unasked; with overwrite it is,
  // whole, and no shard of the old run survives.
  PackOptions other = o;
  other.resolution = 48;
  other.shard_size = 8;
  EXPECT_THROW(pack(other), base::FieldError);
  EXPECT_EQ(fs::last_write_time(dir + "/ds/shard-00000.h5"), before);
  other.overwrite = true;
  const PackResult clean = pack(other);
  EXPECT_EQ(clean.resumed_shards, 0);
  EXPECT_EQ(clean.manifest.shards.size(), 2u);
  EXPECT_FALSE(fs::exists(dir + "/ds/shard-00002.h5"));
  EXPECT_EQ(Dataset::open(dir + "/ds")->resolution(), 48);
}

}  // namespace
}  // namespace gf::data
