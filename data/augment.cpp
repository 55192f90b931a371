// The published augmentations with torchvision v2's tensor-kernel semantics on uint8 CHW
// images: flips, padding and crops are exact; resizes go through ATen's antialiased bilinear
// on float then round (torchvision's float path); rotation is torchvision's affine grid +
// nearest grid_sample; brightness/contrast blend in float and truncate to uint8.
#include "data/augment.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace gf::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// torchvision's F.resize(image, [h, w], bilinear, antialias=True) on uint8 CHW.
at::Tensor resize_bilinear(const at::Tensor& chw, int64_t out_h, int64_t out_w) {
  if (chw.size(1) == out_h && chw.size(2) == out_w) return chw;
  at::Tensor x = chw.unsqueeze(0).to(at::kFloat);
  x = at::_upsample_bilinear2d_aa(x, at::IntArrayRef{out_h, out_w}, false, c10::nullopt, c10::nullopt);
  return x.round_().to(at::kByte).squeeze(0);
}

// torchvision's Resize(size) with one int: the shorter side becomes `size`.
at::Tensor resize_shorter(const at::Tensor& chw, int64_t size) {
  const int64_t h = chw.size(1), w = chw.size(2);
  if (std::min(h, w) == size) return chw;
  if (w <= h) return resize_bilinear(chw, static_cast<int64_t>(static_cast<double>(size) * h / w), size);
  return resize_bilinear(chw, size, static_cast<int64_t>(static_cast<double>(size) * w / h));
}

// Python's round(): half to even (the default FP rounding mode).
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

at::Tensor center_crop(const at::Tensor& chw, int64_t size) {
  const int64_t h = chw.size(1), w = chw.size(2);
  const int64_t top = round_half_even((h - size) / 2.0), left = round_half_even((w - size) / 2.0);
  return chw.slice(1, top, top + size).slice(2, left, left + size);
}

// torchvision v2 rotate(expand=False, center=None, nearest, fill=0): inverse affine matrix of
// a rotation by `degrees` counter-clockwise about the image centre, on a pixel-centre grid.
at::Tensor rotate_nearest(const at::Tensor& chw, double degrees) {
  const int64_t h = chw.size(1), w = chw.size(2);
  const double rot = -degrees * M_PI / 180.0;  // v2 passes -angle to _get_inverse_affine_matrix
  const float theta[6] = {static_cast<float>(std::cos(rot)), static_cast<float>(std::sin(rot)), 0.f,
                          static_cast<float>(-std::sin(rot)), static_cast<float>(std::cos(rot)), 0.f};
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor base = at::empty({1, h, w, 3}, f32);
  base.select(3, 0).copy_(at::linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, f32).view({1, 1, w}));
  base.select(3, 1).copy_(at::linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, f32).view({1, h, 1}));
  base.select(3, 2).fill_(1.0);
  at::Tensor rescaled = at::from_blob(const_cast<float*>(theta), {1, 2, 3}, f32).clone().transpose(1, 2);
  rescaled.select(2, 0).div_(0.5 * w);
  rescaled.select(2, 1).div_(0.5 * h);
  const at::Tensor grid = base.view({1, h * w, 3}).bmm(rescaled).view({1, h, w, 2});
  at::Tensor x = chw.unsqueeze(0).to(at::kFloat);
  x = at::grid_sampler_2d(x, grid, /*nearest*/ 1, /*zeros*/ 0, /*align_corners*/ false);
  return x.round_().to(at::kByte).squeeze(0);
}

// torchvision _blend(image, other, ratio) for uint8: float, clamp to [0, 255], truncate.
at::Tensor blend(const at::Tensor& chw, const at::Tensor& other, double ratio) {
  at::Tensor out = chw.to(at::kFloat).mul_(ratio);
  if (other.defined()) out.add_(other, 1.0 - ratio);
  return out.clamp_(0, 255).to(at::kByte);
}

at::Tensor adjust_brightness(const at::Tensor& chw, double factor) { return blend(chw, at::Tensor(), factor); }

at::Tensor adjust_contrast(const at::Tensor& chw, double factor) {
  const at::Tensor f = chw.to(at::kFloat);
  const at::Tensor gray = f[0].mul(0.2989).add_(f[1], 0.587).add_(f[2], 0.114).floor_();
  // The floored grey values are integers, so a double sum is exact whatever the thread count.
  const float mean = static_cast<float>(gray.to(at::kDouble).mean().item<double>());
  return blend(chw, at::full({1, 1, 1}, mean, at::TensorOptions().dtype(at::kFloat)), factor);
}

// RandomResizedCrop's parameter loop (torchvision v2), then resized_crop to size x size.
at::Tensor random_resized_crop(const at::Tensor& chw, const AugmentOptions& o, SampleRng& rng) {
  const int64_t height = chw.size(1), width = chw.size(2);
  const double area = static_cast<double>(height * width);
  const double log_ratio_lo = std::log(o.crop_ratio_min), log_ratio_hi = std::log(o.crop_ratio_max);
  int64_t top = 0, left = 0, h = 0, w = 0;
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target_area = area * rng.uniform(o.crop_scale_min, o.crop_scale_max);
    const double aspect = std::exp(rng.uniform(log_ratio_lo, log_ratio_hi));
    w = round_half_even(std::sqrt(target_area * aspect));
    h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      top = rng.below(height - h + 1);
      left = rng.below(width - w + 1);
      found = true;
    }
  }
  if (!found) {  // central crop fallback
    const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
    if (in_ratio < o.crop_ratio_min) {
      w = width;
      h = round_half_even(static_cast<double>(w) / o.crop_ratio_min);
    } else if (in_ratio > o.crop_ratio_max) {
      h = height;
      w = round_half_even(static_cast<double>(h) * o.crop_ratio_max);
    } else {
      w = width;
      h = height;
    }
    top = (height - h) / 2;
    left = (width - w) / 2;
  }
  return resize_bilinear(chw.slice(1, top, top + h).slice(2, left, left + w), o.img_size, o.img_size);
}

}  // namespace

SampleRng::SampleRng(uint64_t seed, int64_t epoch, int64_t index)
    : engine_(splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index))) {}

double SampleRng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double SampleRng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

int64_t SampleRng::below(int64_t n) {
  if (n <= 1) return 0;
  const uint64_t range = static_cast<uint64_t>(n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;  // reject the biased tail
  uint64_t x = engine_();
  while (x >= limit) x = engine_();
  return static_cast<int64_t>(x % range);
}

at::Tensor mat_to_chw(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3) throw std::runtime_error("mat_to_chw: found an image that is not 8-bit RGB, expected CV_8UC3");
  const cv::Mat continuous = rgb.isContinuous() ? rgb : rgb.clone();
  return at::from_blob(continuous.data, {continuous.rows, continuous.cols, 3}, at::TensorOptions().dtype(at::kByte))
      .permute({2, 0, 1})
      .contiguous();
}

cv::Mat chw_to_mat(const at::Tensor& chw) {
  const at::Tensor hwc = chw.to(at::kByte).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3);
  std::memcpy(out.data, hwc.data_ptr<uint8_t>(), static_cast<size_t>(hwc.numel()));
  return out;
}

at::Tensor augment_train(const cv::Mat& rgb, const AugmentOptions& o, SampleRng& rng) {
  at::Tensor img = mat_to_chw(rgb);
  if (rng.uniform() < o.hflip_p) img = img.flip({2});
  if (rng.uniform() < o.vflip_p) img = img.flip({1});
  if (rng.uniform() < o.side_padding_p) {
    int64_t pad = o.side_padding_min + rng.below(o.side_padding_max - o.side_padding_min + 1);
    if (o.side_padding_reference > 0) {
      pad = round_half_even(static_cast<double>(pad) * img.size(2) / o.side_padding_reference);
    }
    img = at::constant_pad_nd(img, {pad, pad, 0, 0}, 0);
  }
  if (rng.uniform() < o.rotation_p) img = rotate_nearest(img, rng.uniform(-o.rotation_degrees, o.rotation_degrees));
  if (rng.uniform() < o.jitter_p) {
    // ColorJitter: a random order of the (brightness, contrast) adjustments, then their factors.
    const bool brightness_first = rng.below(2) == 0;
    const double b = rng.uniform(std::max(0.0, 1.0 - o.brightness), 1.0 + o.brightness);
    const double c = rng.uniform(std::max(0.0, 1.0 - o.contrast), 1.0 + o.contrast);
    if (brightness_first) {
      img = adjust_contrast(adjust_brightness(img, b), c);
    } else {
      img = adjust_brightness(adjust_contrast(img, c), b);
    }
  }
  switch (rng.below(3)) {
    case 0: img = random_resized_crop(img, o, rng); break;
    case 1: {
      const auto enlarged = static_cast<int64_t>(o.img_size * o.center_crop_enlarge);  // int(1.3 S)
      img = center_crop(resize_shorter(img, enlarged), o.img_size);
      break;
    }
    default: img = resize_bilinear(img, o.img_size, o.img_size); break;
  }
  return img.contiguous();
}

at::Tensor eval_transform(const cv::Mat& rgb, int img_size) { return resize_bilinear(mat_to_chw(rgb), img_size, img_size).contiguous(); }

void normalize_into(const at::Tensor& images_uint8, at::Tensor out) {
  out.copy_(images_uint8).div_(255.0).sub_(0.5).div_(0.5);
}

at::Tensor normalize_to_float(const at::Tensor& images_uint8) {
  at::Tensor out = at::empty(images_uint8.sizes(), images_uint8.options().dtype(at::kFloat));
  normalize_into(images_uint8, out);
  return out;
}

}  // namespace gf::data
