#include "model/token_reconstruction.hpp"

#include <ATen/Context.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <stdexcept>

namespace gf::model {

namespace {

// splitmix64: a bijective mixer, so distinct (seed, epoch, step, index) give unrelated seeds.
uint64_t mix(uint64_t state, uint64_t value) {
  uint64_t z = state ^ (value + 0x9e3779b97f4a7c15ULL + (state << 6) + (state >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

CorruptionDraws draw_corruption(const DrawKey& key, const std::vector<int64_t>& sample_indices,
                                const VitOptions& vit, torch::Device device) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  // A private generator of the device's kind, re-seeded per sample (draws stay on the device).
  at::Generator generator = at::globalContext().defaultGenerator(device).clone();
  std::vector<torch::Tensor> noise, ratio, mask;
  // The (seed, epoch, step) part of the mix is the same for every sample of the step.
  const uint64_t step_seed = mix(mix(key.seed, static_cast<uint64_t>(key.epoch)), static_cast<uint64_t>(key.step));
  for (const int64_t index : sample_indices) {
    generator.set_current_seed(mix(step_seed, static_cast<uint64_t>(index)));
    // Same order as the published forward: pixel noise, ratio, per-patch uniforms.
    noise.push_back(at::randn({vit.in_chans, vit.img_size, vit.img_size}, generator, options));
    ratio.push_back(at::rand({1}, generator, options));
    mask.push_back(at::rand({vit.num_patches()}, generator, options));
  }
  return {torch::stack(noise), torch::cat(ratio), torch::stack(mask)};
}

TokenReconstructionImpl::TokenReconstructionImpl(VisionTransformer initial, TokenReconstructionOptions options)
    : options_(options), student_(std::move(initial)) {
  const VitOptions& vit = student_->options();
  const int64_t dim = vit.embed_dim;
  register_module("student", student_);

  teacher_ = VisionTransformer(vit);
  {
    torch::NoGradGuard no_grad;
    auto target = teacher_->named_parameters();
    for (const auto& item : student_->named_parameters()) target[item.key()].copy_(item.value());
    auto target_buffers = teacher_->named_buffers();
    for (const auto& item : student_->named_buffers()) target_buffers[item.key()].copy_(item.value());
  }
  for (auto& parameter : teacher_->parameters()) parameter.set_requires_grad(false);
  teacher_->eval();
  teacher_->to(student_->parameters().front().device());

  projector_ = register_module(
      "projector",
      torch::nn::Sequential(torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(options_.projector_norm_eps)),
                            torch::nn::Linear(dim, dim), torch::nn::GELU(), torch::nn::Linear(dim, dim)));
  auto layer_scale = register_module("ls_projector", std::make_shared<torch::nn::Module>());
  ls_gamma_ = layer_scale->register_parameter("gamma", torch::full({dim}, options_.projector_layer_scale_init));
  corruption_token_ = register_parameter("corruption_token", torch::zeros({1, 1, dim}));
}

torch::Tensor TokenReconstructionImpl::teacher_forward(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  return teacher_->forward_features(images);
}

TokenReconstructionOutput TokenReconstructionImpl::student_forward(const torch::Tensor& images,
                                                                   const torch::Tensor& target,
                                                                   const CorruptionDraws& draws,
                                                                   int64_t clean_index) {
  const int64_t batch = images.size(0);
  if (!options_.last_sample_clean) clean_index = -1;
  if (clean_index >= batch)
    throw std::runtime_error("token reconstruction: clean_index: found " + std::to_string(clean_index) +
                             ", expected < batch " + std::to_string(batch));
  TokenReconstructionOutput out;
  out.teacher_tokens = target;

  // Pixel noise: standard normal × scale × per-image, per-channel (unbiased) std.
  torch::Tensor noise = draws.noise.to(images.dtype()) * options_.pixel_noise_scale *
                        images.std({2, 3}, /*unbiased=*/true, /*keepdim=*/true);
  if (clean_index >= 0) noise[clean_index].zero_();
  out.student_input = images + noise;

  torch::Tensor patches = student_->embed_patches(out.student_input);
  // Per-sample ratio r and per-patch Bernoulli(r), drawn and compared in float32 on every
  // device. (The published forward drew both in the patch tokens' dtype: float32 in its
  // fixtures, bf16 under its GPU autocast, where r and the uniforms were rounded to bf16.)
  torch::Tensor ratio = options_.sample_corruption_ratio
                            ? draws.ratio_uniform.to(torch::kFloat32) * static_cast<float>(options_.max_corruption_ratio)
                            : torch::full({batch}, options_.max_corruption_ratio, draws.ratio_uniform.options());
  out.mask = draws.mask_uniform.to(torch::kFloat32) < ratio.unsqueeze(1);
  if (clean_index >= 0) out.mask[clean_index].fill_(false);
  // Replaced before the position embeddings: a masked patch with a zero token carries its
  // position embedding only.
  patches = torch::where(out.mask.unsqueeze(-1), corruption_token_.to(patches.dtype()), patches);

  out.student_features = student_->forward_tokens(student_->add_position_and_prefix(patches));
  out.student_tokens = out.student_features + projector_->forward(out.student_features) * ls_gamma_;
  out.loss = token_reconstruction_loss(out.student_tokens, target);
  return out;
}

TokenReconstructionOutput TokenReconstructionImpl::forward(const torch::Tensor& images, const CorruptionDraws& draws,
                                                           int64_t clean_index) {
  return student_forward(images, teacher_forward(images), draws, clean_index);
}

std::vector<std::pair<std::string, torch::Tensor>> TokenReconstructionImpl::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : student_->named_parameters()) named.emplace_back(item.key(), item.value());
  for (const auto& item : student_->named_buffers()) named.emplace_back(item.key(), item.value());
  for (const auto& item : projector_->named_parameters()) named.emplace_back("projector." + item.key(), item.value());
  named.emplace_back("ls_projector.gamma", ls_gamma_);
  named.emplace_back("corruption_token", corruption_token_);
  return named;
}

void TokenReconstructionImpl::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  auto own = this->state();
  std::map<std::string, torch::Tensor> given(state.begin(), state.end());
  std::string missing;
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : own) {
    auto it = given.find(name);
    if (it == given.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
      continue;
    }
    if (it->second.sizes() != tensor.sizes())
      throw std::runtime_error("token reconstruction state: " + name + ": found shape " +
                               c10::str(it->second.sizes()) + ", expected " + c10::str(tensor.sizes()));
    tensor.copy_(it->second);
    given.erase(it);
  }
  if (!missing.empty()) throw std::runtime_error("token reconstruction state: missing " + missing);
  if (!given.empty())
    throw std::runtime_error("token reconstruction state: unexpected key " + given.begin()->first);
}

std::vector<std::pair<std::string, torch::Tensor>> TokenReconstructionImpl::optimized_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : student_->named_parameters()) named.emplace_back(item.key(), item.value());
  for (const auto& item : projector_->named_parameters()) named.emplace_back("projector." + item.key(), item.value());
  named.emplace_back("ls_projector.gamma", ls_gamma_);
  if (options_.train_corruption_token) named.emplace_back("corruption_token", corruption_token_);
  return named;
}

void TokenReconstructionImpl::to_device(torch::Device device) {
  to(device);
  teacher_->to(device);
}

torch::Tensor token_reconstruction_loss(const torch::Tensor& student_tokens, const torch::Tensor& teacher_tokens) {
  return (student_tokens.to(torch::kFloat32) - teacher_tokens.to(torch::kFloat32)).pow(2).mean();
}

}  // namespace gf::model
