// Preprocessing and codecs against independent peers: PIL's Lanczos resize and a PIL/numpy
// rendition of the published border crop (tests/data/pil_reference.py), PIL's view of our
// JPEG chroma sampling, and the bad-input cases of the image decoder.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/image_codec.hpp"
#include "data/preprocess.hpp"
#include "tests/data/data_test_util.hpp"
#include "tests/support/run_job.hpp"

namespace gf::data {
namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::run_job;

cv::Mat read_png_rgb(const std::string& path) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

void write_png_rgb(const std::string& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  ASSERT_TRUE(cv::imwrite(path, bgr));
}

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  double max_value = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &max_value);
  return max_value;
}

cv::Mat to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

TEST(Preprocess, LanczosResizeMatchesPil) {
  const std::string dir = test::scratch_dir("lanczos");
  const cv::Mat rgb = to_rgb(test::fundus_like(3, cv::Size(301, 233)));
  const std::string in = dir + "/in.png";
  write_png_rgb(in, rgb);
  // Shrinking (kernel widened), enlarging, and one axis unchanged.
  for (const cv::Size size : {cv::Size(64, 64), cv::Size(448, 448), cv::Size(301, 120)}) {
    const std::string out = dir + "/pil.png";
    const JobResult pil = run_job(gf::test::python() + " " + gf::test::test_script("data", "pil_reference.py") + " resize " + in + " " + out + " " +
                                  std::to_string(size.width) + " " + std::to_string(size.height));
    ASSERT_EQ(pil.exit_code, 0) << pil.output;
    const cv::Mat ours = resize_lanczos(rgb, size);
    EXPECT_EQ(max_abs_diff(ours, read_png_rgb(out)), 0.0) << "size " << size;
  }
}

TEST(Preprocess, PublishedBorderCropMatchesPilReference) {
  const std::string dir = test::scratch_dir("border_crop");
  int index = 0;
  for (const cv::Size frame : {cv::Size(320, 240), cv::Size(240, 300)}) {
    for (bool grey : {false, true}) {
      const cv::Mat rgb = to_rgb(test::fundus_like(index++, frame, grey));
      const std::string in = dir + "/in.png", out = dir + "/pil.png";
      write_png_rgb(in, rgb);
      const JobResult pil =
          run_job(gf::test::python() + " " + gf::test::test_script("data", "pil_reference.py") + " preprocess " + in + " " + out + " 128");
      ASSERT_EQ(pil.exit_code, 0) << pil.output;
      const auto box = nlohmann::json::parse(pil.output.substr(pil.output.find('{')))["box"];
      const Preprocessed ours = preprocess_fundus(rgb, PreprocessOptions{128});
      EXPECT_FALSE(ours.fallback);
      EXPECT_EQ(ours.crop.x, box[0].get<int>());
      EXPECT_EQ(ours.crop.y, box[1].get<int>());
      EXPECT_EQ(ours.crop.x + ours.crop.width, box[2].get<int>());
      EXPECT_EQ(ours.crop.y + ours.crop.height, box[3].get<int>());
      EXPECT_EQ(max_abs_diff(ours.rgb, read_png_rgb(out)), 0.0) << "frame " << frame << " grey " << grey;
      // The crop removed the black border: the fundus now spans (nearly) the whole square.
      EXPECT_LT(ours.crop.width, frame.width);
    }
  }
}

TEST(Preprocess, BlankImageFallsBackToPlainResize) {
  const cv::Mat black(90, 120, CV_8UC3, cv::Scalar::all(0));
  const Preprocessed out = preprocess_fundus(black, PreprocessOptions{32});
  EXPECT_TRUE(out.fallback);
  EXPECT_EQ(out.rgb.size(), cv::Size(32, 32));
}

TEST(Codec, JpegIsQuality90With444ChromaAndRoundTrips) {
  const std::string dir = test::scratch_dir("jpeg_444");
  const cv::Mat rgb = to_rgb(test::fundus_like(5, cv::Size(96, 96)));
  const std::vector<uint8_t> bytes = encode_jpeg(rgb, 90);
  const std::string path = dir + "/x.jpg";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const JobResult pil = run_job(gf::test::python() + " " + gf::test::test_script("data", "pil_reference.py") + " sampling " + path);
  ASSERT_EQ(pil.exit_code, 0) << pil.output;
  EXPECT_EQ(std::stoi(pil.output), 0) << "PIL sampling " << pil.output << " (0 = 4:4:4)";
  const cv::Mat back = decode_image(bytes, "x.jpg");
  EXPECT_EQ(back.size(), rgb.size());
  EXPECT_LT(max_abs_diff(back, rgb), 40.0);
}

std::string kind_of(const std::vector<uint8_t>& bytes) {
  try {
    decode_image(bytes, "input");
  } catch (const ImageError& e) {
    return e.kind();
  }
  return "ok";
}

TEST(Codec, BadInputsAreClassified) {
  const cv::Mat rgb = to_rgb(test::fundus_like(1, cv::Size(120, 100)));
  std::vector<uint8_t> jpeg = encode_jpeg(rgb, 90);
  EXPECT_EQ(kind_of(jpeg), "ok");
  EXPECT_EQ(kind_of({}), "empty_file");
  std::vector<uint8_t> truncated(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() / 2));
  EXPECT_EQ(kind_of(truncated), "truncated_image");
  EXPECT_EQ(kind_of({'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'}), "unreadable_image");
  cv::Mat deep;
  rgb.convertTo(deep, CV_16UC3, 257.0);
  std::vector<uint8_t> png16;
  ASSERT_TRUE(cv::imencode(".png", deep, png16));
  EXPECT_EQ(kind_of(png16), "not_8bit");
  cv::Mat grey;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  std::vector<uint8_t> grey_png;
  ASSERT_TRUE(cv::imencode(".png", grey, grey_png));
  const cv::Mat grey_rgb = decode_image(grey_png, "grey.png");
  EXPECT_EQ(grey_rgb.type(), CV_8UC3);
}

}  // namespace
}  // namespace gf::data
