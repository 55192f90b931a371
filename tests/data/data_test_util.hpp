#pragma once
// Helpers of the data tests: scratch folders, fundus-like test images drawn with OpenCV,
// a small labelled image folder, and where the venv's python, the helper scripts and the
// greenfound binary are (the tests run them with tests/support/run_job.hpp).
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gf::data::test {

// A fresh, empty folder <cwd>/work/<name> (removed first if it exists).
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

// the venv's python (GF_PYTHON) and the helper scripts' folder (GF_SOURCE_DIR/tests/data).
std::string python3();
std::string script(const std::string& name);
std::string greenfound_bin();  // GF_BIN

std::string read_text(const std::string& path);
std::string sha256_hex(const void* data, size_t size);

}  // namespace gf::data::test
