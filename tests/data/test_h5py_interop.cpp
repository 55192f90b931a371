// The HDF5 contract both ways: h5py + PIL read every dataset pack writes (jpeg, png, raw),
// and Dataset reads datasets h5py writes with the same layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "base/sha256.hpp"
#include "data/dataset.hpp"
#include "data/pack.hpp"
#include "tests/data/data_test_util.hpp"
#include "tests/support/run_job.hpp"

namespace gf::data {
namespace {

using nlohmann::json;

json run_python(const std::string& args) {
  const gf::test::JobResult python = gf::test::run_job(gf::test::python() + " " + args);
  EXPECT_EQ(python.exit_code, 0) << python.output;
  std::string out = python.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return json::parse(out.substr(out.find_last_of('\n') + 1));  // the scripts print JSON last
}

std::string pixels_sha256(const cv::Mat& rgb) { return base::sha256_hex(std::string(reinterpret_cast<const char*>(rgb.data), rgb.total() * rgb.elemSize())); }

class H5pyReadsPack : public ::testing::TestWithParam<Encoding> {};

TEST_P(H5pyReadsPack, IdsLabelsSplitAndPixelsAgree) {
  const std::string name = "h5py_reads_" + to_string(GetParam());
  const std::string dir = test::scratch_dir(name);
  const auto folder = test::write_image_folder(dir, 7);
  PackOptions o;
  o.images_dir = folder.images_dir;
  o.labels_csv = folder.labels_csv;
  o.id_column = "image_id";
  o.out_dir = dir + "/ds";
  o.resolution = 48;
  o.encoding = GetParam();
  o.shard_size = 3;
  o.split_by = "patient_id";
  o.threads = 2;
  o.show_progress = false;
  pack(o);

  const json seen = run_python(gf::test::test_script("data", "h5py_read.py") + " " + o.out_dir);
  const auto ds = Dataset::open(o.out_dir);
  EXPECT_TRUE(seen["sha256_ok"].get<bool>());
  EXPECT_TRUE(seen["manifest_sha256_ok"].get<bool>());  // python's canonical JSON agrees with write_manifest's
  EXPECT_EQ(seen["count"].get<int64_t>(), ds->size());
  EXPECT_EQ(seen["ids"].get<std::vector<std::string>>(), ds->ids());
  EXPECT_EQ(seen["sources"].get<std::vector<std::string>>(), ds->sources());
  EXPECT_EQ(seen["attrs"]["resolution"].get<int>(), 48);
  EXPECT_EQ(seen["attrs"]["encoding"].get<std::string>(), to_string(GetParam()));
  const auto test_indices = ds->split_indices("test");
  const auto split = seen["split"].get<std::vector<int>>();
  for (int64_t i = 0; i < ds->size(); ++i) {
    const bool is_test = std::find(test_indices.begin(), test_indices.end(), i) != test_indices.end();
    EXPECT_EQ(split[static_cast<size_t>(i)], is_test ? 1 : 0);
  }
  for (const auto& column : ds->label_columns()) {
    EXPECT_EQ(seen["label_types"][column.name].get<std::string>(), to_string(column.type));
    const auto values = ds->float_labels(column.name);
    for (size_t i = 0; i < values.size(); ++i) {
      const json& v = seen["labels"][column.name][i];
      if (column.type == LabelType::kFloat && std::isnan(values[i])) {
        EXPECT_TRUE(v.is_null());
      } else if (column.type == LabelType::kFloat) {
        EXPECT_DOUBLE_EQ(v.get<double>(), values[i]);
      } else {
        EXPECT_EQ(v.get<int64_t>(), ds->int_labels(column.name)[i]);
      }
    }
  }
  EXPECT_EQ(seen["categories"]["site"].get<std::vector<std::string>>(), (std::vector<std::string>{"A", "B", "C"}));
  for (int64_t i = 0; i < ds->size(); ++i) {
    const json& image = seen["images"][static_cast<size_t>(i)];
    const cv::Mat ours = ds->decode(i);
    EXPECT_EQ(image["shape"].get<std::vector<int>>(), (std::vector<int>{48, 48, 3}));
    EXPECT_EQ(image["pixels_sha256"].get<std::string>(), pixels_sha256(ours)) << "image " << i << " decodes differently";
    if (GetParam() == Encoding::kJpeg) EXPECT_EQ(image["sampling"].get<int>(), 0) << "expected 4:4:4 JPEG";
  }
}

INSTANTIATE_TEST_SUITE_P(Encodings, H5pyReadsPack, ::testing::Values(Encoding::kJpeg, Encoding::kPng, Encoding::kRaw),
                         [](const auto& info) { return to_string(info.param); });

class PackReadsH5py : public ::testing::TestWithParam<std::string> {};

TEST_P(PackReadsH5py, DatasetWrittenByH5pyOpens) {
  const std::string dir = test::scratch_dir("reads_h5py_" + GetParam());
  const json expect = run_python(gf::test::test_script("data", "h5py_write.py") + " " + dir + "/ds " + GetParam());
  const auto ds = Dataset::open(dir + "/ds");
  EXPECT_EQ(ds->size(), 9);
  EXPECT_EQ(ds->manifest().encoding, parse_encoding(GetParam()));
  EXPECT_EQ(ds->ids(), expect["ids"].get<std::vector<std::string>>());
  EXPECT_EQ(ds->int_labels("grade"), expect["grade"].get<std::vector<int64_t>>());
  const auto score = ds->float_labels("score");
  for (size_t i = 0; i < score.size(); ++i) {
    if (expect["score"][i].is_null()) {
      EXPECT_TRUE(std::isnan(score[i]));
    } else {
      EXPECT_DOUBLE_EQ(score[i], expect["score"][i].get<double>());
    }
  }
  std::vector<int64_t> expected_test;
  for (size_t i = 0; i < expect["split"].size(); ++i) {
    if (expect["split"][i].get<int>() == 1) expected_test.push_back(static_cast<int64_t>(i));
  }
  EXPECT_EQ(ds->split_indices("test"), expected_test);
  for (int64_t i = 0; i < ds->size(); ++i) {
    EXPECT_EQ(pixels_sha256(ds->decode(i)), expect["pixels_sha256"][static_cast<size_t>(i)].get<std::string>()) << "image " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Encodings, PackReadsH5py, ::testing::Values("jpeg", "png", "raw"));

}  // namespace
}  // namespace gf::data
