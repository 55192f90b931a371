#pragma once
// Helpers of the data tests: scratch folders, fundus-like test images drawn with OpenCV,
// and a small labelled image folder (the python peers, the helper scripts and the greenfound
// binary are found through tests/support/environment.hpp).
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gf::data::test {

// A fresh, empty folder <cwd>/scratch/<name> (tests/support/temp_dir.hpp's scratch_dir).
std::string scratch_dir(const std::string& name);

// A colour-fundus-like 8-bit BGR frame: a reddish disc on black inside a non-square frame,
// an optic disc, a few vessels and noise, all drawn from `index`. grey_background adds a
// dim grey surround (the quantile rule must still find the border).
cv::Mat fundus_like(int index, cv::Size frame, bool grey_background = false);

struct ImageFolder {
  std::string images_dir;
  std::string labels_csv;
  std::vector<std::string> ids;  // in file-name order
};

// n JPEGs "img_000.jpg".. of alternating frame sizes under <dir>/images and <dir>/labels.csv
// with columns image_id, patient_id (two images each), grade (int 0-4), dme (yes/no),
// site (text A/B/C), cdr (float, every 7th missing).
ImageFolder write_image_folder(const std::string& dir, int n);

std::string read_text(const std::string& path);

}  // namespace gf::data::test
