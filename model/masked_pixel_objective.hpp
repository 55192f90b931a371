#pragma once
// A SimMIM-style masked-image objective (Xie et al. 2022): a share of the patch tokens is
// replaced by a learned mask token before the position embeddings, and a linear head
// predicts the (loader-normalised) pixels of every patch from the encoder's patch tokens; the
// L1 loss counts the masked patches only. It trains a teacher from a seeded random init when
// no pretrained weights can be had (the demo's stand-in for DINOv2, README). A state dict is
// the encoder in timm names plus `pixel_head.{weight,bias}` and `mask_token`, so checkpoints
// export and embed like Token Reconstruction's.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <utility>
#include <vector>

#include "model/vit.hpp"

namespace gf::model {

struct MaskedPixelOptions {
  double mask_ratio = 0.6;  // SimMIM's share of masked patches (each patch masked with this probability)
};

struct MaskedPixelOutput {
  torch::Tensor loss;  // scalar, float32: mean |prediction - pixels| over the masked patches
  torch::Tensor mask;  // [B, N] bool, true = patch masked
};

class MaskedPixelObjectiveImpl : public torch::nn::Module {
 public:
  MaskedPixelObjectiveImpl(VisionTransformer encoder, MaskedPixelOptions options);

  // `mask_uniform`: [B, N] U[0, 1) (draw_corruption's per-patch uniforms, so the mask is a
  // function of (seed, epoch, step, sample) and resumes exactly); a patch is masked when its
  // uniform is below mask_ratio.
  MaskedPixelOutput forward(const torch::Tensor& images, const torch::Tensor& mask_uniform);

  // Encoder (timm names), pixel_head, mask_token, in state order.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Names and shapes must all match.
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state);
  std::vector<std::pair<std::string, torch::Tensor>> optimized_parameters() const;  // all of them

  VisionTransformer encoder() const { return encoder_; }

 private:
  MaskedPixelOptions options_;
  VisionTransformer encoder_{nullptr};
  torch::nn::Linear pixel_head_{nullptr};
  torch::Tensor mask_token_;
};
TORCH_MODULE(MaskedPixelObjective);

// [B, C, H, W] -> [B, N, p*p*C]: the pixels of each patch, patches row-major as embed_patches orders them.
torch::Tensor patchify(const torch::Tensor& images, int64_t patch_size);

}  // namespace gf::model
