// The loader: data.fraction's patient-level subset, sharding over ranks (coverage, 1 rank == 2 ranks), exact mid-epoch resume,
// determinism across worker counts, eval order, corrupted shards, the augmentations, and an
// augmentation contact sheet for a person to look at.
#include <gtest/gtest.h>
#include <ATen/ATen.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "data/augment.hpp"
#include "data/loader.hpp"
#include "data/pack.hpp"
#include "tests/data/data_test_util.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;

constexpr int kImages = 20;

class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = test::scratch_dir("loader");
    const auto folder = test::write_image_folder(dir, kImages);
    PackOptions o;
    o.images_dir = folder.images_dir;
    o.labels_csv = folder.labels_csv;
    o.id_column = "image_id";
    o.out_dir = dir + "/ds";
    o.resolution = 64;
    o.shard_size = 8;
    o.split_by = "patient_id";
    o.threads = 2;
    o.show_progress = false;
    pack(o);
    dataset_dir_ = o.out_dir;
  }

  static LoaderOptions options(int rank, int world, int workers = 2) {
    LoaderOptions o;
    o.dataset_dir = dataset_dir_;
    o.split = "all";
    o.global_batch_size = 6;
    o.rank = rank;
    o.world_size = world;
    o.seed = 11;
    o.img_size = 56;
    o.workers = workers;
    o.verify = Verify::kSizes;
    return o;
  }

  static std::vector<Batch> epoch(Loader& loader, int64_t e, int64_t from_step = 0) {
    std::vector<Batch> batches;
    loader.start(e, from_step);
    while (auto b = loader.next()) batches.push_back(std::move(*b));
    return batches;
  }

  static std::string dataset_dir_;
};

std::string LoaderTest::dataset_dir_;

TEST_F(LoaderTest, RanksCoverEachSampleOnceKeepingOrDroppingTheLastBatch) {
  // 20 samples in batches of 6: the published loader keeps the last 2 as a fourth batch (with
  // 3 or 4 ranks some rank gets none of it); drop_last ends the epoch after 18.
  for (const bool drop_last : {false, true}) {
    for (int world : {1, 2, 3, 4}) {
      std::map<int64_t, int> seen;
      int64_t steps = 0;
      for (int rank = 0; rank < world; ++rank) {
        LoaderOptions o = options(rank, world, 1);
        o.drop_last = drop_last;
        Loader loader(o);
        steps = loader.steps_per_epoch();
        for (int64_t step = 0; step < steps; ++step) {
          for (int64_t i : loader.indices_at(3, step)) ++seen[i];
        }
      }
      EXPECT_EQ(steps, drop_last ? kImages / 6 : kImages / 6 + 1);
      EXPECT_EQ(static_cast<int64_t>(seen.size()), drop_last ? 18 : kImages) << "world " << world;
      for (const auto& [index, count] : seen) EXPECT_EQ(count, 1) << "index " << index << " world " << world;
    }
  }
  // A new epoch is a new permutation.
  Loader loader(options(0, 1, 1));
  EXPECT_NE(loader.indices_at(0, 0), loader.indices_at(1, 0));
}

TEST_F(LoaderTest, DataFractionIsASeededPatientLevelSubsetOfTheSplit) {
  const auto dataset = Dataset::open(dataset_dir_, Verify::kSizes);
  const std::vector<int64_t> train = dataset->split_indices("train");
  const std::vector<double> patient = dataset->float_labels("patient_id");
  std::set<double> train_patients;
  for (int64_t i : train) train_patients.insert(patient[static_cast<size_t>(i)]);
  ASSERT_GE(train_patients.size(), 4u);

  EXPECT_EQ(dataset->patient_subset(train, 1.0, 5), train);
  const std::vector<int64_t> half = dataset->patient_subset(train, 0.5, 5);
  EXPECT_EQ(dataset->patient_subset(train, 0.5, 5), half);
  EXPECT_TRUE(std::is_sorted(half.begin(), half.end()));
  // Whole patients: each kept patient keeps every one of its training images.
  std::set<double> kept;
  for (int64_t i : half) kept.insert(patient[static_cast<size_t>(i)]);
  EXPECT_EQ(kept.size(), (train_patients.size() + 1) / 2);
  for (int64_t i : train) EXPECT_EQ(kept.count(patient[static_cast<size_t>(i)]), std::count(half.begin(), half.end(), i)) << i;
  // A smaller fraction of the same seed lies inside a larger one; another seed draws others.
  const std::vector<int64_t> quarter = dataset->patient_subset(train, 0.25, 5);
  EXPECT_TRUE(std::includes(half.begin(), half.end(), quarter.begin(), quarter.end()));
  bool differs = false;
  for (uint64_t seed = 6; seed < 10; ++seed) differs |= dataset->patient_subset(train, 0.5, seed) != half;
  EXPECT_TRUE(differs);
  EXPECT_THROW(dataset->patient_subset(train, 0.0, 5), std::runtime_error);

  // The training loader draws only the subset: one epoch visits exactly its images.
  LoaderOptions o = options(0, 1, 1);
  o.split = "train";
  o.fraction = 0.5;
  o.seed = 5;
  o.global_batch_size = 2;
  Loader loader(o);
  EXPECT_EQ(loader.split_size(), static_cast<int64_t>(half.size()));
  std::vector<int64_t> seen;
  for (int64_t step = 0; step < loader.steps_per_epoch(); ++step)
    for (int64_t i : loader.indices_at(0, step)) seen.push_back(i);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, half);
}

TEST_F(LoaderTest, TwoRanksSeeExactlyTheBatchesOfOneRank) {
  Loader single(options(0, 1));
  Loader rank0(options(0, 2)), rank1(options(1, 2));
  for (int64_t e : {0, 1}) {
    const auto whole = epoch(single, e);
    const auto a = epoch(rank0, e), b = epoch(rank1, e);
    ASSERT_EQ(whole.size(), a.size());
    ASSERT_EQ(whole.size(), b.size());
    ASSERT_EQ(whole.size(), 4u);  // 3 batches of 6, the kept last of 2
    for (size_t s = 0; s < whole.size(); ++s) {
      std::vector<int64_t> joined = a[s].dataset_indices;
      joined.insert(joined.end(), b[s].dataset_indices.begin(), b[s].dataset_indices.end());
      EXPECT_EQ(joined, whole[s].dataset_indices);
      const bool last = s + 1 == whole.size();
      EXPECT_EQ(b[s].global_positions, (last ? std::vector<int64_t>{1} : std::vector<int64_t>{3, 4, 5}));
      EXPECT_EQ(b[s].global_batch_size, last ? 2 : 6);
      EXPECT_TRUE(at::equal(at::cat({a[s].images, b[s].images}), whole[s].images)) << "epoch " << e << " step " << s;
      EXPECT_EQ(whole[s].images.sizes(), (at::IntArrayRef{last ? 2 : 6, 3, 56, 56}));
      EXPECT_EQ(whole[s].step, static_cast<int64_t>(s));
    }
  }
}

TEST_F(LoaderTest, ARankWithoutASampleOfTheLastBatchGetsAnEmptyOne) {
  // 4 ranks share the kept last batch of 2: ranks 0 and 2 get none of it, but a batch still
  // comes (the training loop's collectives must meet).
  for (int rank : {0, 1}) {
    Loader loader(options(rank, 4));
    const auto batches = epoch(loader, 0);
    ASSERT_EQ(batches.size(), 4u);
    EXPECT_EQ(batches.back().global_batch_size, 2);
    EXPECT_EQ(batches.back().images.size(0), rank == 0 ? 0 : 1);
    EXPECT_EQ(batches.back().global_positions, (rank == 0 ? std::vector<int64_t>{} : std::vector<int64_t>{0}));
  }
}

TEST_F(LoaderTest, MidEpochResumeContinuesTheIdenticalSequence) {
  Loader loader(options(0, 1));
  const auto full = epoch(loader, 2);
  Loader resumed(options(0, 1));
  const auto tail = epoch(resumed, 2, 1);
  ASSERT_EQ(tail.size(), full.size() - 1);
  for (size_t s = 0; s < tail.size(); ++s) {
    EXPECT_EQ(tail[s].step, full[s + 1].step);
    EXPECT_EQ(tail[s].dataset_indices, full[s + 1].dataset_indices);
    EXPECT_TRUE(at::equal(tail[s].images, full[s + 1].images));
  }
}

TEST_F(LoaderTest, AugmentationIsIdenticalForOneAndFourWorkers) {
  Loader one(options(0, 1, 1)), four(options(0, 1, 4));
  const auto a = epoch(one, 5), b = epoch(four, 5);
  ASSERT_EQ(a.size(), b.size());
  for (size_t s = 0; s < a.size(); ++s) EXPECT_TRUE(at::equal(a[s].images, b[s].images)) << "step " << s;
  // Normalised to [-1, 1] and actually augmented (two epochs differ).
  EXPECT_GE(a[0].images.min().item<float>(), -1.0f);
  EXPECT_LE(a[0].images.max().item<float>(), 1.0f);
  const auto other = epoch(one, 6);
  EXPECT_FALSE(at::equal(a[0].images, other[0].images));
}

TEST_F(LoaderTest, EvalVisitsEverySampleOnceInOrderAcrossRanks) {
  std::vector<int64_t> order, positions;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions o = options(rank, 3);
    o.mode = LoaderMode::kEval;
    Loader loader(o);
    for (const auto& b : epoch(loader, 0)) {
      order.insert(order.end(), b.dataset_indices.begin(), b.dataset_indices.end());
      positions.insert(positions.end(), b.global_positions.begin(), b.global_positions.end());
      EXPECT_LE(b.dataset_indices.size(), 2u);
      EXPECT_EQ(b.global_batch_size, kImages);
    }
  }
  std::vector<int64_t> expected(kImages);
  for (int i = 0; i < kImages; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
  EXPECT_EQ(positions, expected);

  // The eval transform is a plain resize: the same pixels as eval_transform of the decode.
  LoaderOptions o = options(0, 1);
  o.mode = LoaderMode::kEval;
  o.split = "test";
  Loader loader(o);
  const auto batches = epoch(loader, 0);
  const auto test_indices = loader.dataset().split_indices("test");
  ASSERT_FALSE(batches.empty());
  EXPECT_EQ(batches[0].dataset_indices[0], test_indices[0]);
  const at::Tensor expected_image = normalize_to_float(eval_transform(loader.dataset().decode(test_indices[0]), 56));
  EXPECT_TRUE(at::equal(batches[0].images[0], expected_image));
}

TEST_F(LoaderTest, CorruptedShardIsNamedByLoaderAndInspect) {
  const std::string dir = test::scratch_dir("loader_corrupt");
  fs::copy(dataset_dir_, dir + "/ds");
  {
    std::fstream f(dir + "/ds/shard-00001.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(dir + "/ds/shard-00001.h5") / 2));
    f.put('\x5a');
  }
  LoaderOptions o = options(0, 1);
  o.dataset_dir = dir + "/ds";
  o.verify = Verify::kChecksums;
  try {
    Loader loader(o);
    FAIL() << "expected the corrupt shard to be reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-00001.h5: sha256"), std::string::npos) << e.what();
  }
  std::ostringstream out;
  try {
    print_dataset_summary(dir + "/ds", out);
    FAIL() << "expected inspect to fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-00001.h5"), std::string::npos) << e.what();
  }
  EXPECT_NE(out.str().find("shard-00001.h5  8 images"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("CORRUPT"), std::string::npos) << out.str();

  std::ostringstream good;
  print_dataset_summary(dataset_dir_, good);
  EXPECT_NE(good.str().find("checksums: all 3 shards ok"), std::string::npos) << good.str();
  EXPECT_NE(good.str().find("site (category): A=0: 7, B=1: 7, C=2: 6"), std::string::npos) << good.str();
}

TEST_F(LoaderTest, AugmentationBranchesFollowTheRecipe) {
  const auto ds = Dataset::open(dataset_dir_, Verify::kSizes);
  const cv::Mat rgb = ds->decode(0);
  const at::Tensor plain = eval_transform(rgb, 56);
  AugmentOptions none;
  none.img_size = 56;
  none.hflip_p = none.vflip_p = none.side_padding_p = none.rotation_p = none.jitter_p = 0.0;
  AugmentOptions flip = none;
  flip.hflip_p = 1.0;
  int plain_hits = 0, flipped_hits = 0;
  for (int64_t index = 0; index < 60; ++index) {
    SampleRng a(1, 0, index), b(1, 0, index);
    plain_hits += at::equal(augment_train(rgb, none, a), plain) ? 1 : 0;
    // Flip then resize vs resize then flip: equal up to float rounding of the filter weights.
    const at::Tensor diff = augment_train(rgb, flip, b).to(at::kInt) - plain.flip({2}).to(at::kInt);
    flipped_hits += diff.abs().max().item<int>() <= 1 ? 1 : 0;
  }
  // One of three RandomChoice branches is Resize((S, S)): about 20 of 60 draws.
  EXPECT_GT(plain_hits, 8);
  EXPECT_LT(plain_hits, 35);
  EXPECT_GT(flipped_hits, 8);
  // Side padding: black columns at both edges when it is the only (and certain) step and the
  // crop keeps the whole width (plain resize branch).
  AugmentOptions pad = none;
  pad.side_padding_p = 1.0;
  pad.side_padding_reference = 0;
  int padded = 0;
  for (int64_t index = 0; index < 30; ++index) {
    SampleRng r(2, 0, index);
    const at::Tensor out = augment_train(rgb, pad, r);
    if (out.select(2, 0).max().item<uint8_t>() == 0 && out.select(2, 55).max().item<uint8_t>() == 0) ++padded;
  }
  EXPECT_GT(padded, 5);
}

TEST_F(LoaderTest, ContactSheetOfAugmentations) {
  const auto ds = Dataset::open(dataset_dir_, Verify::kSizes);
  AugmentOptions o;
  o.img_size = 56;
  const int columns = 8, rows = 4;
  cv::Mat sheet(rows * 60, columns * 60, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int r = 0; r < rows; ++r) {
    const cv::Mat rgb = ds->decode(r);
    cv::Mat original;
    cv::resize(rgb, original, cv::Size(56, 56), 0, 0, cv::INTER_AREA);
    original.copyTo(sheet(cv::Rect(2, r * 60 + 2, 56, 56)));
    std::vector<at::Tensor> views;
    for (int c = 1; c < columns; ++c) {
      SampleRng rng(0, c, r), again(0, c, r);
      const at::Tensor view = augment_train(rgb, o, rng);
      EXPECT_TRUE(at::equal(view, augment_train(rgb, o, again))) << "row " << r << ": a draw is not reproducible";
      // Still a fundus: a good part of the view is not black border or padding.
      EXPECT_GT((view.amax(0) > 20).sum().item<int64_t>(), 56 * 56 / 5) << "row " << r << ", view " << c;
      chw_to_mat(view).copyTo(sheet(cv::Rect(c * 60 + 2, r * 60 + 2, 56, 56)));
      views.push_back(view);
    }
    // The draws differ: a row of identical views would mean the augmentations never ran.
    int distinct = 0;
    for (size_t i = 0; i < views.size(); ++i) {
      bool repeated = false;
      for (size_t j = 0; j < i; ++j) repeated = repeated || at::equal(views[i], views[j]);
      distinct += repeated ? 0 : 1;
    }
    EXPECT_GE(distinct, 5) << "row " << r;
  }
  cv::Mat bgr;
  cv::cvtColor(sheet, bgr, cv::COLOR_RGB2BGR);
  const std::string path = fs::absolute(fs::current_path() / "scratch" / "augmentation_contact_sheet.png").string();
  ASSERT_TRUE(cv::imwrite(path, bgr));
  std::cout << "augmentation contact sheet (first column: packed image): " << path << std::endl;
}

}  // namespace
}  // namespace gf::data
