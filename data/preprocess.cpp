#include "data/preprocess.hpp"

#include <opencv2/core.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace gf::data {
namespace {

constexpr double kLanczosSupport = 3.0;
// Pillow's fixed-point precision for 8-bit resampling (Resample.c: 32 - 8 - 2).
constexpr int kPrecisionBits = 22;

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos(double x) { return (x >= -kLanczosSupport && x < kLanczosSupport) ? sinc(x) * sinc(x / kLanczosSupport) : 0.0; }

// One axis of Pillow's separable resampling: for each output pixel the first input pixel,
// the tap count and the fixed-point weights.
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out x ksize
};

Taps precompute_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = kLanczosSupport * filter_scale;
  Taps taps;
  taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size) * taps.ksize, 0);
  std::vector<double> k(taps.ksize);
  const double ss = 1.0 / filter_scale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double sum = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = lanczos((x + xmin - center + 0.5) * ss);
      sum += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = sum != 0.0 ? k[x] / sum : k[x];
      const double fixed = w * (1 << kPrecisionBits);
      taps.weights[static_cast<size_t>(xx) * taps.ksize + x] = static_cast<int32_t>(w < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    taps.first[xx] = xmin;
    taps.count[xx] = xmax;
  }
  return taps;
}

// Pillow accumulates in 32-bit ints (weights of 22 bits times 8-bit values fit).
uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(std::clamp<int32_t>(v, 0, 255));
}

// Horizontal pass on 8-bit rows (any channel count), as Pillow's ImagingResampleHorizontal_8bpc.
cv::Mat resample_horizontal(const cv::Mat& in, int out_width) {
  const Taps taps = precompute_taps(in.cols, out_width);
  const int channels = in.channels();
  cv::Mat out(in.rows, out_width, in.type());
  for (int y = 0; y < in.rows; ++y) {
    const uint8_t* src = in.ptr<uint8_t>(y);
    uint8_t* dst = out.ptr<uint8_t>(y);
    for (int xx = 0; xx < out_width; ++xx) {
      const int32_t* w = &taps.weights[static_cast<size_t>(xx) * taps.ksize];
      const int xmin = taps.first[xx];
      for (int c = 0; c < channels; ++c) {
        int32_t acc = int32_t{1} << (kPrecisionBits - 1);
        for (int x = 0; x < taps.count[xx]; ++x) acc += static_cast<int32_t>(src[(x + xmin) * channels + c]) * w[x];
        dst[xx * channels + c] = clip8(acc);
      }
    }
  }
  return out;
}

cv::Mat resample_vertical(const cv::Mat& in, int out_height) {
  const Taps taps = precompute_taps(in.rows, out_height);
  const int row_values = in.cols * in.channels();
  cv::Mat out(out_height, in.cols, in.type());
  std::vector<int32_t> acc(row_values);
  for (int yy = 0; yy < out_height; ++yy) {
    const int32_t* w = &taps.weights[static_cast<size_t>(yy) * taps.ksize];
    std::fill(acc.begin(), acc.end(), int32_t{1} << (kPrecisionBits - 1));
    for (int y = 0; y < taps.count[yy]; ++y) {
      const uint8_t* src = in.ptr<uint8_t>(taps.first[yy] + y);
      const int32_t weight = w[y];
      for (int i = 0; i < row_values; ++i) acc[i] += static_cast<int32_t>(src[i]) * weight;
    }
    uint8_t* dst = out.ptr<uint8_t>(yy);
    for (int i = 0; i < row_values; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

// numpy.quantile(values, q) with the default linear interpolation.
double quantile_linear(std::vector<double> values, double q) {
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const double t = position - static_cast<double>(below);
  std::nth_element(values.begin(), values.begin() + below, values.end());
  const double a = values[below];
  if (t == 0.0 || below + 1 >= values.size()) return a;
  const double b = *std::min_element(values.begin() + below + 1, values.end());
  // numpy's _lerp: a + (b - a) t, computed from b's side when t >= 0.5.
  return t >= 0.5 ? b - (b - a) * (1.0 - t) : a + (b - a) * t;
}

// The crop box of step 1-2, or an empty rect when no row/column passes the threshold.
cv::Rect border_crop_box(const cv::Mat& rgb, const PreprocessOptions& options) {
  const int h = rgb.rows, w = rgb.cols;
  std::vector<double> mean(static_cast<size_t>(h) * w);
  double max_mean = 0.0;
  for (int y = 0; y < h; ++y) {
    const uint8_t* p = rgb.ptr<uint8_t>(y);
    for (int x = 0; x < w; ++x) {
      const double m = (static_cast<double>(p[3 * x]) + p[3 * x + 1] + p[3 * x + 2]) / 3.0;
      mean[static_cast<size_t>(y) * w + x] = m;
      max_mean = std::max(max_mean, m);
    }
  }
  if (max_mean <= 0.0) return {};
  for (double& m : mean) m = m / max_mean * 255.0;
  const double background = quantile_linear(mean, options.quantile);
  std::vector<double> col_sum(w, 0.0), row_sum(h, 0.0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double m = mean[static_cast<size_t>(y) * w + x] - background;
      col_sum[x] += m;
      row_sum[y] += m;
    }
  }
  int left = -1, right = -1, top = -1, bottom = -1;
  for (int x = 0; x < w; ++x) {
    if (col_sum[x] / h > options.threshold) {
      if (left < 0) left = x;
      right = x;
    }
  }
  for (int y = 0; y < h; ++y) {
    if (row_sum[y] / w > options.threshold) {
      if (top < 0) top = y;
      bottom = y;
    }
  }
  if (left < 0 || top < 0) return {};
  const int buffer = static_cast<int>((h + w) / 2.0 * options.buffer_fraction);
  left = std::max(0, left - buffer);
  right = std::min(w, right + buffer);
  top = std::max(0, top - buffer);
  bottom = std::min(h, bottom + buffer);
  if (right <= left || bottom <= top) return {};
  return {left, top, right - left, bottom - top};
}

cv::Mat pad_to_square(const cv::Mat& image) {
  const int side = std::max(image.rows, image.cols);
  const int top = (side - image.rows) / 2, left = (side - image.cols) / 2;
  cv::Mat square(side, side, image.type(), cv::Scalar::all(0));
  image.copyTo(square(cv::Rect(left, top, image.cols, image.rows)));
  return square;
}

}  // namespace

cv::Mat resize_lanczos(const cv::Mat& image, cv::Size size) {
  if (image.depth() != CV_8U) throw std::runtime_error("resize_lanczos: found a non-8-bit image, expected 8-bit");
  if (size.width <= 0 || size.height <= 0) throw std::runtime_error("resize_lanczos: found an empty target size, expected a positive one");
  cv::Mat in = image.isContinuous() ? image : image.clone();
  // Pillow: horizontal pass first (to 8 bits), then vertical; an unchanged axis is skipped.
  if (in.cols != size.width) in = resample_horizontal(in, size.width);
  if (in.rows != size.height) in = resample_vertical(in, size.height);
  return in.data == image.data ? image.clone() : in;
}

Preprocessed preprocess_fundus(const cv::Mat& rgb, const PreprocessOptions& options) {
  if (rgb.type() != CV_8UC3) throw std::runtime_error("preprocess_fundus: found an image that is not 8-bit RGB, expected 8-bit RGB");
  if (options.resolution <= 0) throw std::runtime_error("preprocess: resolution: found a non-positive value, expected > 0");
  Preprocessed out;
  const cv::Rect box = border_crop_box(rgb, options);
  const cv::Size target(options.resolution, options.resolution);
  if (box.empty()) {
    out.fallback = true;
    out.crop = cv::Rect(0, 0, rgb.cols, rgb.rows);
    out.rgb = resize_lanczos(rgb, target);
    return out;
  }
  out.crop = box;
  out.rgb = resize_lanczos(pad_to_square(rgb(box)), target);
  return out;
}

}  // namespace gf::data
