// Synthetic fundus generator: determinism (seed, thread count), the labels.csv contract, class
// balance, decoding by OpenCV and by an independent decoder (PIL), and that pixels carry the
// labels (red-lesion counts grow with the DR grade, inadequate images are less sharp, sites
// differ in colour). One 200-image set is drawn once for the whole suite.
#include <gtest/gtest.h>
#include <unistd.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/synth.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using gf::data::SynthLabels;
using gf::data::SynthOptions;

namespace {

constexpr int kSetSize = 200;

// A fresh folder `name` in this process's temporary folder (removed at exit).
fs::path scratch(const std::string& name) {
  static const gf::test::TempDir root("synth");
  const fs::path dir = root.path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, sep)) out.push_back(field);
  return out;
}

struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};

Csv read_csv(const fs::path& path) {
  std::ifstream in(path);
  Csv csv;
  std::string line;
  std::getline(in, line);
  csv.header = split(line, ',');
  while (std::getline(in, line)) {
    const std::vector<std::string> fields = split(line, ',');
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < fields.size() && i < csv.header.size(); ++i) row[csv.header[i]] = fields[i];
    csv.rows.push_back(row);
  }
  return csv;
}

// The fundus field, shrunk away from its rim (where the field stop makes strong edges).
cv::Mat field_interior(const cv::Mat& bgr) {
  cv::Mat grey, mask;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::threshold(grey, mask, 12, 255, cv::THRESH_BINARY);
  cv::erode(mask, mask, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(41, 41)));
  return mask;
}

// The field without the optic disc (the brightest blurred spot), where vessels converge.
cv::Mat field_without_disc(const cv::Mat& bgr) {
  cv::Mat mask = field_interior(bgr), grey, blurred;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::GaussianBlur(grey, blurred, cv::Size(), 8);
  cv::Point brightest;
  cv::minMaxLoc(blurred, nullptr, nullptr, nullptr, &brightest, mask);
  cv::circle(mask, brightest, grey.rows / 8, cv::Scalar(0), cv::FILLED);
  return mask;
}

// Small dark-red blobs in the green channel (microaneurysms, dot/blot haemorrhages), not vessels:
// closing with a line element fills dark details shorter than the line in its direction; the
// minimum over orientations keeps vessels (long in one of them) and fills round spots only.
int count_red_spots(const cv::Mat& bgr) {
  cv::Mat green;
  cv::extractChannel(bgr, green, 1);
  cv::Mat vessels_only;
  constexpr int kLine = 15;
  for (int k = 0; k < 12; ++k) {
    cv::Mat line = cv::Mat::zeros(kLine, kLine, CV_8U);
    const double a = CV_PI * k / 12;
    const cv::Point d(cvRound(std::cos(a) * kLine / 2), cvRound(std::sin(a) * kLine / 2));
    cv::line(line, cv::Point(kLine / 2, kLine / 2) - d, cv::Point(kLine / 2, kLine / 2) + d, cv::Scalar(1));
    cv::Mat closed;
    cv::morphologyEx(green, closed, cv::MORPH_CLOSE, line);
    vessels_only = k == 0 ? closed : cv::min(vessels_only, closed);
  }
  cv::Mat spots = vessels_only - green;
  cv::threshold(spots, spots, 15, 255, cv::THRESH_BINARY);
  spots &= field_without_disc(bgr);
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(spots, labels, stats, centroids, 8);
  int count = 0;
  for (int i = 1; i < n; ++i) count += stats.at<int>(i, cv::CC_STAT_AREA) >= 3;
  return count;
}

// Sharpness after a 2x reduction, so sensor noise does not dominate the Laplacian.
double laplacian_variance(const cv::Mat& bgr) {
  cv::Mat grey, half, lap;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::resize(grey, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  cv::Laplacian(half, lap, CV_32F, 3);
  cv::Mat mask;
  cv::resize(field_interior(bgr), mask, half.size(), 0, 0, cv::INTER_NEAREST);
  cv::Scalar mean, stddev;
  cv::meanStdDev(lap, mean, stddev, mask);
  return stddev[0] * stddev[0];
}

struct ImageStats {
  cv::Size size;
  cv::Scalar left_border, right_border;  // mean BGR of the outer 8 columns
  cv::Scalar field;                      // mean BGR inside the field
  int red_spots = 0;
  double sharpness = 0;
};

ImageStats measure(const cv::Mat& bgr) {
  ImageStats s;
  s.size = bgr.size();
  s.left_border = cv::mean(bgr(cv::Rect(0, 0, 8, bgr.rows)));
  s.right_border = cv::mean(bgr(cv::Rect(bgr.cols - 8, 0, 8, bgr.rows)));
  s.field = cv::mean(bgr, field_interior(bgr));
  s.red_spots = count_red_spots(bgr);
  s.sharpness = laplacian_variance(bgr);
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// One 200-image set, drawn and measured once: ctest runs every test in its own process, so the
// checks on it live in one test (each reported under its own trace).
struct SynthSet {
  fs::path dir;
  Csv csv;
  std::map<std::string, ImageStats> stats;  // by image id; absent when OpenCV could not decode

  const ImageStats* of(const std::map<std::string, std::string>& row) const {
    const auto it = stats.find(row.at("image_id"));
    return it == stats.end() ? nullptr : &it->second;
  }
};

SynthSet draw_set(const fs::path& dir) {
  SynthOptions o;
  o.count = kSetSize;
  o.seed = 11;
  o.sites = 3;
  o.threads = 2;
  gf::data::write_synth_dataset(o, dir.string());
  SynthSet set{dir, read_csv(dir / "labels.csv"), {}};
  for (const auto& row : set.csv.rows) {
    const cv::Mat img = cv::imread((dir / (row.at("image_id") + ".jpg")).string(), cv::IMREAD_COLOR);
    if (!img.empty()) set.stats[row.at("image_id")] = measure(img);
  }
  return set;
}

void check_label_columns_and_rows(const SynthSet& set) {
  const std::vector<std::string> expected(std::begin(gf::data::kSynthLabelColumns), std::end(gf::data::kSynthLabelColumns));
  EXPECT_EQ(set.csv.header, expected);
  ASSERT_EQ(set.csv.rows.size(), static_cast<std::size_t>(kSetSize));
  std::set<std::string> ids, sites;
  for (std::size_t i = 0; i < set.csv.rows.size(); ++i) {
    const auto& r = set.csv.rows[i];
    EXPECT_EQ(r.size(), expected.size());
    EXPECT_TRUE(ids.insert(r.at("image_id")).second) << "duplicate " << r.at("image_id");
    EXPECT_TRUE(fs::exists(set.dir / (r.at("image_id") + ".jpg")));
    EXPECT_EQ(r.at("image_id"), r.at("patient_id") + "_" + r.at("eye"));
    EXPECT_EQ(r.at("eye"), i % 2 == 0 ? "L" : "R");
    if (i % 2 == 1) {
      const auto& fellow = set.csv.rows[i - 1];
      EXPECT_EQ(r.at("patient_id"), fellow.at("patient_id"));
      EXPECT_EQ(r.at("site"), fellow.at("site"));
      EXPECT_EQ(r.at("diabetes"), fellow.at("diabetes"));
    }
    sites.insert(r.at("site"));
    const int grade = std::stoi(r.at("dr_grade"));
    EXPECT_GE(grade, 0);
    EXPECT_LE(grade, 4);
    const double cdr = std::stod(r.at("cdr"));
    EXPECT_EQ(r.at("glaucoma"), cdr > gf::data::kGlaucomaCdr ? "1" : "0") << r.at("image_id");
    EXPECT_TRUE(r.at("quality") == "Adequate" || r.at("quality") == "Inadequate");
    EXPECT_TRUE(r.at("diabetes") == "yes" || r.at("diabetes") == "no");
    if (r.at("diabetes") == "no") {
      EXPECT_EQ(grade, 0) << r.at("image_id");
    }
  }
  EXPECT_EQ(sites, (std::set<std::string>{"A", "B", "C"}));
}

void check_every_task_has_every_class(const SynthSet& set) {
  std::map<std::string, std::map<std::string, int>> counts;
  for (const auto& r : set.csv.rows) {
    for (const char* task : {"dr_grade", "macular_edema", "amd", "glaucoma", "quality", "diabetes"}) ++counts[task][r.at(task)];
  }
  EXPECT_EQ(counts["dr_grade"].size(), 5u);
  for (const auto& [task, classes] : counts) {
    if (task != "dr_grade") {
      EXPECT_EQ(classes.size(), 2u) << task;
    }
    for (const auto& [value, n] : classes) {
      std::cout << task << "=" << value << ": " << n << "\n";
      EXPECT_GE(n, task == "dr_grade" ? 8 : 20) << task << "=" << value;  // >= 10% of 200 for binary tasks
    }
  }
}

void check_fellow_eyes_share_disease(const SynthSet& set) {
  int close_grades = 0, close_cdr = 0, pairs = 0;
  for (std::size_t i = 1; i < set.csv.rows.size(); i += 2) {
    const auto &l = set.csv.rows[i - 1], &r = set.csv.rows[i];
    close_grades += std::abs(std::stoi(l.at("dr_grade")) - std::stoi(r.at("dr_grade"))) <= 1;
    close_cdr += std::abs(std::stod(l.at("cdr")) - std::stod(r.at("cdr"))) < 0.2;
    ++pairs;
  }
  EXPECT_GE(close_grades, pairs * 9 / 10);
  EXPECT_GE(close_cdr, pairs * 9 / 10);
}

void check_frames(const SynthSet& set) {
  for (const auto& r : set.csv.rows) {
    const ImageStats* s = set.of(r);
    ASSERT_NE(s, nullptr) << r.at("image_id") << ".jpg does not decode with OpenCV";
    EXPECT_GT(s->size.width, s->size.height) << r.at("image_id");
    // Left and right borders of the frame are black (the packer crops them).
    EXPECT_LT(s->left_border[0] + s->left_border[1] + s->left_border[2], 6.0) << r.at("image_id");
    EXPECT_LT(s->right_border[0] + s->right_border[1] + s->right_border[2], 6.0) << r.at("image_id");
    if (r.at("quality") != "Adequate") continue;
    // Orange-red: in the field red dominates green, green dominates blue.
    EXPECT_GT(s->field[2], s->field[1]) << r.at("image_id");
    EXPECT_GT(s->field[1], s->field[0]) << r.at("image_id");
  }
}

void check_red_spots_grow_with_dr_grade(const SynthSet& set) {
  std::map<int, std::vector<double>> spots;
  for (const auto& r : set.csv.rows) {
    if (r.at("quality") == "Adequate" && set.of(r) != nullptr) spots[std::stoi(r.at("dr_grade"))].push_back(set.of(r)->red_spots);
  }
  std::vector<double> means;
  for (int grade = 0; grade <= 4; ++grade) {
    double sum = 0;
    for (double n : spots[grade]) sum += n;
    means.push_back(spots[grade].empty() ? 0.0 : sum / spots[grade].size());
    std::cout << "dr_grade " << grade << ": " << spots[grade].size() << " images, mean red spots " << means.back() << "\n";
  }
  EXPECT_LT(means[0], means[1]);
  EXPECT_LT(means[1], means[2]);
  EXPECT_LT(means[2], means[3]);
  EXPECT_LT(means[3], means[4]);
  EXPECT_GT(means[4], 4 * means[0] + 10);
}

void check_inadequate_images_are_less_sharp(const SynthSet& set) {
  std::vector<double> adequate, inadequate;
  for (const auto& r : set.csv.rows) {
    if (set.of(r) != nullptr) (r.at("quality") == "Adequate" ? adequate : inadequate).push_back(set.of(r)->sharpness);
  }
  std::cout << "median Laplacian variance: adequate " << median(adequate) << ", inadequate " << median(inadequate) << "\n";
  EXPECT_LT(median(inadequate), 0.6 * median(adequate));
}

void check_sites_differ_in_colour(const SynthSet& set) {
  std::map<std::string, std::vector<double>> blue_over_red;
  for (const auto& r : set.csv.rows) {
    if (r.at("quality") == "Adequate" && set.of(r) != nullptr) {
      blue_over_red[r.at("site")].push_back(set.of(r)->field[0] / set.of(r)->field[2]);
    }
  }
  EXPECT_GT(median(blue_over_red["B"]), 1.15 * median(blue_over_red["A"]));
  EXPECT_LT(median(blue_over_red["C"]), median(blue_over_red["A"]));
}

}  // namespace

TEST(Synth, SameSeedGivesIdenticalBytesWhateverTheThreadCount) {
  SynthOptions o;
  o.count = 8;
  o.seed = 5;
  o.sites = 4;
  o.threads = 1;
  const fs::path a = scratch("one_thread"), b = scratch("three_threads");
  gf::data::write_synth_dataset(o, a.string());
  o.threads = 3;
  gf::data::write_synth_dataset(o, b.string());
  int files = 0;
  for (const auto& entry : fs::directory_iterator(a)) {
    const fs::path name = entry.path().filename();
    ASSERT_TRUE(fs::exists(b / name)) << name;
    EXPECT_EQ(read_bytes(a / name), read_bytes(b / name)) << name;
    ++files;
  }
  EXPECT_EQ(files, 9);  // 8 JPEGs + labels.csv, no temporary left behind
}

TEST(Synth, DifferentSeedGivesDifferentImages) {
  SynthOptions one, two;
  one.seed = 1;
  two.seed = 2;
  for (int i = 0; i < 4; ++i) {
    const cv::Mat a = gf::data::synth_sample(one, i).image;
    EXPECT_EQ(cv::norm(a, gf::data::synth_sample(one, i).image, cv::NORM_INF), 0.0) << "index " << i;
    const cv::Mat b = gf::data::synth_sample(two, i).image;
    EXPECT_TRUE(a.size() != b.size() || cv::norm(a, b, cv::NORM_L1) > 0) << "index " << i;
  }
}

TEST(Synth, RejectsBadOptions) {
  SynthOptions o;
  o.sites = 27;
  EXPECT_THROW(gf::data::synth_sample(o, 0), std::runtime_error);
  o.sites = 2;
  o.frame_size = {10, 10};
  EXPECT_THROW(gf::data::synth_sample(o, 0), std::runtime_error);
}

TEST(Synth, FrameSizeOverridesEverySite) {
  SynthOptions o;
  o.sites = 6;
  o.frame_size = {320, 240};
  for (int i = 0; i < 12; i += 3) EXPECT_EQ(gf::data::synth_sample(o, i).image.size(), cv::Size(320, 240));
}

TEST(Synth, TwoHundredImagesCarryTheirLabels) {
  const fs::path dir = scratch("set");
  const SynthSet set = draw_set(dir);
  {
    SCOPED_TRACE("labels.csv columns and rows");
    check_label_columns_and_rows(set);
  }
  {
    SCOPED_TRACE("both classes of every task");
    check_every_task_has_every_class(set);
  }
  {
    SCOPED_TRACE("fellow eyes");
    check_fellow_eyes_share_disease(set);
  }
  {
    SCOPED_TRACE("frames decode with OpenCV: non-square, black borders, orange-red field");
    check_frames(set);
  }
  {
    SCOPED_TRACE("red lesions vs dr_grade");
    check_red_spots_grow_with_dr_grade(set);
  }
  {
    SCOPED_TRACE("sharpness vs quality");
    check_inadequate_images_are_less_sharp(set);
  }
  {
    SCOPED_TRACE("colour cast per site");
    check_sites_differ_in_colour(set);
  }
}

TEST(Synth, ImagesDecodeWithPythonPil) {
  const std::string py = gf::test::python();
  const fs::path dir = scratch("pil");
  SynthOptions o;
  o.count = 12;
  o.seed = 4;
  o.sites = 6;
  gf::data::write_synth_dataset(o, dir.string());
  const fs::path script = dir.parent_path() / "decode.py";
  const fs::path listing = dir.parent_path() / "sizes.txt";
  std::ofstream(script) << "import sys, glob, os\n"
                           "from PIL import Image\n"
                           "out = open(sys.argv[2], 'w')\n"
                           "for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.jpg'))):\n"
                           "    im = Image.open(path); im.load()\n"
                           "    assert im.mode == 'RGB', (path, im.mode)\n"
                           "    r, g, b = [sum(c.getdata()) for c in im.split()]\n"
                           "    out.write('%s %d %d %d %d %d\\n' % (os.path.basename(path)[:-4], im.width, im.height, r, g, b))\n";
  ASSERT_EQ(std::system((py + " " + script.string() + " " + dir.string() + " " + listing.string()).c_str()), 0);
  std::ifstream in(listing);
  std::string id;
  long long w = 0, h = 0, r = 0, g = 0, b = 0;
  int decoded = 0;
  while (in >> id >> w >> h >> r >> g >> b) {
    const cv::Mat img = cv::imread((dir / (id + ".jpg")).string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty()) << id;
    EXPECT_EQ(cv::Size(static_cast<int>(w), static_cast<int>(h)), img.size()) << id;
    // Both decoders agree on the pixels (libjpeg variants may round a few differently).
    const cv::Scalar sum = cv::sum(img);
    EXPECT_NEAR(static_cast<double>(r), sum[2], 1e-3 * sum[2] + 1000) << id;
    EXPECT_NEAR(static_cast<double>(g), sum[1], 1e-3 * sum[1] + 1000) << id;
    EXPECT_NEAR(static_cast<double>(b), sum[0], 1e-3 * sum[0] + 1000) << id;
    ++decoded;
  }
  EXPECT_EQ(decoded, o.count);
}

TEST(SynthCli, WritesImagesLabelsAndPreview) {
  const std::string bin = gf::test::greenfound_bin();
  const fs::path out = scratch("cli");
  const std::string cmd = bin + " synth --out " + out.string() +
                          " --n 6 --seed 3 --sites 2 --size 320x240 --preview --quiet > " + (out / "stdout.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const Csv csv = read_csv(out / "labels.csv");
  ASSERT_EQ(csv.rows.size(), 6u);
  for (const auto& r : csv.rows) {
    const cv::Mat img = cv::imread((out / (r.at("image_id") + ".jpg")).string());
    ASSERT_FALSE(img.empty());
    EXPECT_EQ(img.size(), cv::Size(320, 240));
  }
  // The library and the CLI draw the same pixels.
  SynthOptions o;
  o.count = 6;
  o.seed = 3;
  o.sites = 2;
  o.frame_size = {320, 240};
  // The contact sheet: a 4x4 grid of 300x250 tiles over 40-pixel caption bands; the 6 images
  // fill the first tiles, each its image scaled to fit and centred, with a caption; the rest
  // stay the grey background.
  const cv::Mat preview = cv::imread((out / "preview.png").string());
  ASSERT_FALSE(preview.empty());
  ASSERT_EQ(preview.size(), cv::Size(4 * 300, 4 * (250 + 40)));
  const cv::Mat background(250 + 40, 300, CV_8UC3, cv::Scalar(32, 32, 32));
  for (int i = 0; i < 16; ++i) {
    const cv::Rect tile((i % 4) * 300, (i / 4) * 290, 300, 250), caption(tile.x, tile.y + 250, 300, 40);
    if (i >= o.count) {
      EXPECT_EQ(cv::norm(preview(cv::Rect(tile.x, tile.y, 300, 290)), background, cv::NORM_INF), 0) << "tile " << i;
      continue;
    }
    cv::Mat expected;
    const cv::Mat image = gf::data::synth_sample(o, i).image;
    const double scale = std::min(300.0 / image.cols, 250.0 / image.rows);
    cv::resize(image, expected, cv::Size(), scale, scale, cv::INTER_AREA);
    const cv::Rect placed(tile.x + (300 - expected.cols) / 2, tile.y + (250 - expected.rows) / 2, expected.cols,
                          expected.rows);
    EXPECT_EQ(cv::norm(preview(placed), expected, cv::NORM_INF), 0) << "tile " << i << " is not image " << i;
    cv::Mat grey;
    cv::cvtColor(preview(caption), grey, cv::COLOR_BGR2GRAY);
    EXPECT_GT(cv::countNonZero(grey > 200), 100) << "tile " << i << " has no caption";
  }
  const std::string first = (out / (csv.rows[0].at("image_id") + ".jpg")).string();
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", gf::data::synth_sample(o, 0).image, jpeg, {cv::IMWRITE_JPEG_QUALITY, o.jpeg_quality});
  EXPECT_EQ(read_bytes(first), std::string(jpeg.begin(), jpeg.end()));

  EXPECT_NE(std::system((bin + " synth --out " + out.string() + " --n 2 --size 600by500 2>/dev/null").c_str()), 0);
}
