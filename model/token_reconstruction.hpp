#pragma once
// RETFound-Green's Token Reconstruction objective (DESIGN.md, Token Reconstruction): a student
// ViT reconstructs the tokens a frozen copy of the initial weights (the teacher) computes on
// the clean image, from a noised image whose patch tokens are partly replaced by a
// corruption token. Parameter names are those of the published wrapper, so a state dict is
// the student in timm names plus `projector.{0,1,3}.{weight,bias}`, `ls_projector.gamma`
// and `corruption_token`.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/vit.hpp"

namespace gf::model {

// Every number of the objective; defaults are the published values.
struct TokenReconstructionOptions {
  double max_corruption_ratio = 1.0 / 3.0;  // r ~ U(0, max) per sample
  bool sample_corruption_ratio = true;      // false: r = max for every sample
  double pixel_noise_scale = 0.2;           // × per-image, per-channel unbiased std
  bool last_sample_clean = true;            // the global batch's last sample: no noise, no mask
  double projector_norm_eps = 1e-5;         // torch's default, unlike the encoder's 1e-6
  double projector_layer_scale_init = 1e-5;
  bool train_corruption_token = false;      // the published optimizer never received it
};

// The random draws of one forward, in the published order; the objective consumes all of
// them, the clean sample's included.
struct CorruptionDraws {
  torch::Tensor noise;          // [B, C, H, W] standard normal
  torch::Tensor ratio_uniform;  // [B] U[0, 1)
  torch::Tensor mask_uniform;   // [B, N] U[0, 1)
};

// What the training loop needs to locate one sample of the global batch in a reproducible
// random stream: every draw is a function of these, never of a rank's generator, so any
// split of the batch over ranks draws the same numbers.
struct DrawKey {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t step = 0;
};

// Draws for samples `sample_indices` (global, as the loader names them), one generator per
// sample seeded from (key, index). Generated on `device` (CPU and CUDA streams differ).
CorruptionDraws draw_corruption(const DrawKey& key, const std::vector<int64_t>& sample_indices,
                                const VitOptions& vit, torch::Device device);

struct TokenReconstructionOutput {
  torch::Tensor loss;              // scalar, float32
  torch::Tensor teacher_tokens;    // [B, T, D], detached
  torch::Tensor student_input;     // [B, C, H, W] image + noise
  torch::Tensor mask;              // [B, N] bool, true = patch replaced
  torch::Tensor student_features;  // [B, T, D] after the final norm
  torch::Tensor student_tokens;    // [B, T, D] after the residual projector
};

class TokenReconstructionImpl : public torch::nn::Module {
 public:
  // `initial` holds the starting weights: the student is `initial` itself (trained), the
  // teacher a deep copy of it (frozen, eval mode, never registered, so it is neither in
  // parameters() nor in state()).
  TokenReconstructionImpl(VisionTransformer initial, TokenReconstructionOptions options);

  // `clean_index`: the local index of the sample holding the last position of the global
  // batch (-1 when it lives on another rank); ignored unless options.last_sample_clean.
  TokenReconstructionOutput forward(const torch::Tensor& images, const CorruptionDraws& draws,
                                    int64_t clean_index);

  // The teacher's target alone (no autograd), and the student side given that target: the
  // training loop times them apart.
  torch::Tensor teacher_forward(const torch::Tensor& images);
  TokenReconstructionOutput student_forward(const torch::Tensor& images, const torch::Tensor& target,
                                            const CorruptionDraws& draws, int64_t clean_index);

  // Published names, in state order: student (timm), projector, ls_projector, corruption_token.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Copies matching entries of `state` into the parameters (names and shapes must all match).
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state);
  // The trainable parameters with their names: the student's and the projector's, plus the
  // corruption token when options.train_corruption_token.
  std::vector<std::pair<std::string, torch::Tensor>> optimized_parameters() const;

  // Moves student, teacher, projector and token.
  void to_device(torch::Device device);

  VisionTransformer student() const { return student_; }
  VisionTransformer teacher() const { return teacher_; }
  const torch::Tensor& corruption_token() const { return corruption_token_; }
  const TokenReconstructionOptions& options() const { return options_; }

 private:
  TokenReconstructionOptions options_;
  VisionTransformer student_{nullptr};
  VisionTransformer teacher_{nullptr};
  torch::nn::Sequential projector_{nullptr};
  torch::Tensor ls_gamma_;
  torch::Tensor corruption_token_;
};
TORCH_MODULE(TokenReconstruction);

// The published loss: mean over every token and dimension of the squared difference.
torch::Tensor token_reconstruction_loss(const torch::Tensor& student_tokens, const torch::Tensor& teacher_tokens);

}  // namespace gf::model
