#include "tests/data/data_test_util.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>

#include "tests/support/temp_dir.hpp"

namespace gf::data::test {

namespace fs = std::filesystem;

std::string scratch_dir(const std::string& name) { return gf::test::scratch_dir(name).string(); }

cv::Mat fundus_like(int index, cv::Size frame, bool grey_background) {
  std::mt19937 rng(static_cast<unsigned>(1000 + index));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  cv::Mat img(frame, CV_8UC3, grey_background ? cv::Scalar(18, 18, 18) : cv::Scalar(0, 0, 0));
  const cv::Point centre(frame.width / 2 + static_cast<int>((u(rng) - 0.5) * 10), frame.height / 2);
  const int radius = static_cast<int>(0.42 * std::min(frame.width, frame.height));
  cv::circle(img, centre, radius, cv::Scalar(40 + 30 * u(rng), 70 + 40 * u(rng), 170 + 60 * u(rng)), cv::FILLED, cv::LINE_AA);
  const cv::Point disc(centre.x + static_cast<int>(radius * (0.35 + 0.1 * u(rng))), centre.y);
  cv::circle(img, disc, radius / 7, cv::Scalar(150, 210, 240), cv::FILLED, cv::LINE_AA);
  for (int v = 0; v < 6; ++v) {
    const double angle = 2 * M_PI * (v + u(rng)) / 6;
    const cv::Point end(disc.x + static_cast<int>(std::cos(angle) * radius * 0.9), disc.y + static_cast<int>(std::sin(angle) * radius * 0.9));
    cv::line(img, disc, end, cv::Scalar(20, 30, 110), 2 + v % 2, cv::LINE_AA);
  }
  cv::Mat mask(frame, CV_8UC1, cv::Scalar(0));
  cv::circle(mask, centre, radius, cv::Scalar(255), cv::FILLED);
  cv::Mat noise(frame, CV_8UC3);
  cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(6));
  cv::Mat noisy;
  cv::add(img, noise, noisy, mask);
  noisy.copyTo(img, mask);
  return img;
}

ImageFolder write_image_folder(const std::string& dir, int n) {
  ImageFolder folder;
  folder.images_dir = (fs::path(dir) / "images").string();
  folder.labels_csv = (fs::path(dir) / "labels.csv").string();
  fs::create_directories(folder.images_dir);
  std::ofstream csv(folder.labels_csv);
  csv << "image_id,patient_id,grade,dme,site,cdr\n";
  const char* sites[] = {"A", "B", "C"};
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "img_%03d", i);
    const cv::Size frame = (i % 2 == 0) ? cv::Size(200, 150) : cv::Size(180, 160);
    cv::imwrite((fs::path(folder.images_dir) / (std::string(id) + ".jpg")).string(), fundus_like(i, frame, i % 3 == 0),
                {cv::IMWRITE_JPEG_QUALITY, 95});
    csv << id << ",P" << (i / 2) << "," << (i % 5) << "," << (i % 4 == 0 ? "yes" : "no") << "," << sites[i % 3] << ",";
    if (i % 7 != 0) csv << 0.3 + 0.01 * i;
    csv << "\n";
    folder.ids.push_back(id);
  }
  return folder;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace gf::data::test
