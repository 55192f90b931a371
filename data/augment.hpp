#pragma once
// The published training augmentations (retfound-green.md §1, RETFound-Green's data.py on
// torchvision v2, uint8 CHW tensors) and the eval transform, with torchvision's parameter
// sampling and pixel semantics:
//   RandomHorizontalFlip(0.5), RandomVerticalFlip(0.05),
//   RandomApply(RandomSidePadding(33..149 px left and right), 0.1),
//   RandomApply(RandomRotation(12.5, nearest, fill 0), 0.25),
//   RandomApply(ColorJitter(brightness 0.33, contrast 0.33), 0.25),
//   RandomChoice(RandomResizedCrop(S, scale 0.7-1, ratio 3/5-5/3), Resize(int(1.3 S)) + CenterCrop(S),
//                Resize((S, S))), every resize bilinear with antialias.
// Randomness comes from a SampleRng seeded by (seed, epoch, dataset index) only.
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <random>

namespace gf::data {

struct AugmentOptions {
  int img_size = 392;
  double hflip_p = 0.5;
  double vflip_p = 0.05;
  double side_padding_p = 0.1;
  int side_padding_min = 33;   // inclusive, pixels at side_padding_reference width
  int side_padding_max = 149;  // inclusive
  // The published padding was drawn in pixels of its 1024 px preprocessed images; the
  // amount is scaled by (input width / reference) so it covers the same fraction of the
  // fundus at any packed resolution (at 1024, the drawn pixels). 0 = use them as drawn.
  int side_padding_reference = 1024;
  double rotation_p = 0.25;
  double rotation_degrees = 12.5;
  double jitter_p = 0.25;
  double brightness = 0.33;
  double contrast = 0.33;
  double crop_scale_min = 0.7;
  double crop_scale_max = 1.0;
  double crop_ratio_min = 3.0 / 5.0;
  double crop_ratio_max = 5.0 / 3.0;
  double center_crop_enlarge = 1.3;  // Resize(int(1.3 S)) + CenterCrop(S)
};

// A per-sample random stream: mt19937_64 seeded by a splitmix64 mix of (seed, epoch, index).
// uniform() is in [0, 1) with 53 bits; below(n) is unbiased in [0, n).
class SampleRng {
 public:
  SampleRng(uint64_t seed, int64_t epoch, int64_t index);
  double uniform();
  double uniform(double lo, double hi);
  int64_t below(int64_t n);

 private:
  std::mt19937_64 engine_;
};

// The training augmentation of one RGB HWC 8-bit image: uint8 [3,S,S].
at::Tensor augment_train(const cv::Mat& rgb, const AugmentOptions& options, SampleRng& rng);
// The eval transform: Resize((S,S), bilinear, antialias) of one RGB HWC 8-bit image: uint8 [3,S,S].
at::Tensor eval_transform(const cv::Mat& rgb, int img_size);
// uint8 [.., 3, S, S] -> float32 (x/255 - 0.5) / 0.5, into `out` (float32, same shape) or a
// new tensor.
void normalize_into(const at::Tensor& images_uint8, at::Tensor out);
at::Tensor normalize_to_float(const at::Tensor& images_uint8);

// RGB HWC cv::Mat <-> uint8 CHW tensor (copies).
at::Tensor mat_to_chw(const cv::Mat& rgb);
cv::Mat chw_to_mat(const at::Tensor& chw);

}  // namespace gf::data
