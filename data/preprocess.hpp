#pragma once
// The published offline preprocessing (retfound-green.md §2, RETFound-Green's
// preprocess_imgs.py): crop the black border, pad to square, Lanczos resize.
//   1. m = per-pixel channel mean, rescaled so max(m) = 255, minus its 5% quantile (linear
//      interpolation, numpy's default); columns/rows kept from the first to the last whose
//      mean exceeds the threshold 5.
//   2. buffer = int(2.5% of (H + W) / 2) added on each side, clipped to the image; the
//      crop box is [left, right) x [top, bottom) with right = last kept column + buffer
//      (PIL's crop box, so the published off-by-one is kept).
//   3. zero-pad the short side to square (floor half before, the rest after).
//   4. resize to resolution x resolution with PIL's Lanczos (a = 3, the kernel widened by the
//      scale factor when shrinking, i.e. antialiased). OpenCV's INTER_LANCZOS4 is a fixed
//      8-tap kernel that aliases when shrinking a 3000 px photograph to 1024, so it is not used.
// When no row/column passes the threshold (a black or blank frame) the fallback is the
// published one: a plain Lanczos resize of the whole image.
#include <opencv2/core.hpp>

namespace gf::data {

struct PreprocessOptions {
  int resolution = 1024;  // published
  double threshold = 5.0;
  double quantile = 0.05;
  double buffer_fraction = 0.025;
};

struct Preprocessed {
  cv::Mat rgb;            // resolution x resolution, 8-bit RGB
  bool fallback = false;  // the border crop failed; plain resize
  cv::Rect crop;          // the crop box in the input (fallback: the whole image)
};

Preprocessed preprocess_fundus(const cv::Mat& rgb, const PreprocessOptions& options);

// PIL's Image.resize(size, LANCZOS) on an 8-bit image of 1 or 3 channels.
cv::Mat resize_lanczos(const cv::Mat& image, cv::Size size);

}  // namespace gf::data
