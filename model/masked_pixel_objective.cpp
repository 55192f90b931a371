#include "model/masked_pixel_objective.hpp"

#include <torch/nn/init.h>

#include <map>
#include <stdexcept>

namespace gf::model {

torch::Tensor patchify(const torch::Tensor& images, int64_t patch_size) {
  const int64_t b = images.size(0), c = images.size(1), g = images.size(2) / patch_size;
  return images.reshape({b, c, g, patch_size, g, patch_size})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({b, g * g, patch_size * patch_size * c});
}

MaskedPixelObjectiveImpl::MaskedPixelObjectiveImpl(VisionTransformer encoder, MaskedPixelOptions options)
    : options_(options), encoder_(std::move(encoder)) {
  const VitOptions& vit = encoder_->options();
  register_module("student", encoder_);
  pixel_head_ = register_module(
      "pixel_head", torch::nn::Linear(vit.embed_dim, vit.patch_size * vit.patch_size * vit.in_chans));
  // SimMIM and MAE start the mask token near zero (trunc_normal std 0.02); the global
  // generator is seeded by the caller, as for the head.
  mask_token_ = register_parameter("mask_token", torch::randn({1, 1, vit.embed_dim}) * 0.02);
}

MaskedPixelOutput MaskedPixelObjectiveImpl::forward(const torch::Tensor& images, const torch::Tensor& mask_uniform) {
  const VitOptions& vit = encoder_->options();
  MaskedPixelOutput out;
  out.mask = mask_uniform.to(torch::kFloat32) < static_cast<float>(options_.mask_ratio);
  torch::Tensor patches = encoder_->embed_patches(images);
  patches = torch::where(out.mask.unsqueeze(-1), mask_token_.to(patches.dtype()), patches);
  const torch::Tensor tokens = encoder_->forward_tokens(encoder_->add_position_and_prefix(patches));
  const torch::Tensor predicted = pixel_head_->forward(tokens.slice(1, vit.num_prefix_tokens())).to(torch::kFloat32);
  const torch::Tensor target = patchify(images, vit.patch_size).to(torch::kFloat32);
  const torch::Tensor weight = out.mask.to(torch::kFloat32).unsqueeze(-1);
  const torch::Tensor per_pixel = (predicted - target).abs() * weight;
  // A batch without a masked patch contributes a zero loss, not a division by zero.
  out.loss = per_pixel.sum() / (weight.sum() * predicted.size(-1)).clamp_min(1);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> MaskedPixelObjectiveImpl::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : encoder_->named_parameters()) named.emplace_back(item.key(), item.value());
  for (const auto& item : encoder_->named_buffers()) named.emplace_back(item.key(), item.value());
  for (const auto& item : pixel_head_->named_parameters()) named.emplace_back("pixel_head." + item.key(), item.value());
  named.emplace_back("mask_token", mask_token_);
  return named;
}

void MaskedPixelObjectiveImpl::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  std::map<std::string, torch::Tensor> given(state.begin(), state.end());
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : this->state()) {
    const auto it = given.find(name);
    if (it == given.end()) throw std::runtime_error("masked pixel state: missing " + name);
    if (it->second.sizes() != tensor.sizes())
      throw std::runtime_error("masked pixel state: " + name + ": found shape " + c10::str(it->second.sizes()) +
                               ", expected " + c10::str(tensor.sizes()));
    tensor.copy_(it->second);
    given.erase(it);
  }
  if (!given.empty()) throw std::runtime_error("masked pixel state: unexpected key " + given.begin()->first);
}

std::vector<std::pair<std::string, torch::Tensor>> MaskedPixelObjectiveImpl::optimized_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : named_parameters()) named.emplace_back(item.key(), item.value());
  return named;
}

}  // namespace gf::model
