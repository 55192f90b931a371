#include "model/vit.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "model/vit_block.hpp"

namespace gf::model {
namespace {

// timm's trunc_normal_: inverse-CDF sampling of N(mean, std^2) cut at absolute [a, b].
void trunc_normal(at::Tensor& t, double std, at::Generator& gen, double a = -2.0, double b = 2.0) {
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double lo = cdf(a / std), hi = cdf(b / std);
  t.uniform_(2.0 * lo - 1.0, 2.0 * hi - 1.0, gen).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(a, b);
}

// Fills `param` (on any device) from a CPU tensor produced by `fill`, so one seed gives the
// same weights on every device.
template <typename Fill>
void init_param(torch::Tensor& param, Fill fill) {
  auto cpu = at::empty(param.sizes(), at::TensorOptions().dtype(at::kFloat));
  fill(cpu);
  param.copy_(cpu);
}

}  // namespace

Pool parse_pool(const std::string& name) {
  if (name == "mean_all") return Pool::kMeanAll;
  if (name == "avg") return Pool::kAvg;
  if (name == "cls") return Pool::kCls;
  throw std::runtime_error("pool: found \"" + name + "\", expected one of mean_all, avg, cls");
}

std::string pool_name(Pool pool) {
  switch (pool) {
    case Pool::kMeanAll: return "mean_all";
    case Pool::kAvg: return "avg";
    case Pool::kCls: return "cls";
  }
  throw std::logic_error("pool_name: unknown Pool value");
}

VisionTransformerImpl::VisionTransformerImpl(VitOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.patch_size <= 0 || o.img_size <= 0 || o.img_size % o.patch_size != 0 || o.img_size > kMaxImgSize)
    throw std::runtime_error("model " + o.arch + ": img_size: found " + std::to_string(o.img_size) +
                             ", expected a positive multiple of patch_size " + std::to_string(o.patch_size) + " up to " +
                             std::to_string(kMaxImgSize));
  if (o.depth <= 0 || o.embed_dim <= 0 || o.num_reg_tokens < 0)
    throw std::runtime_error("model " + o.arch + ": depth and embed_dim must be positive");
  // Own parameters first, then submodules: the order of timm's state dict.
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, o.embed_dim}));
  reg_token_ = register_parameter("reg_token", torch::zeros({1, o.num_reg_tokens, o.embed_dim}));
  pos_embed_ = register_parameter("pos_embed", torch::zeros({1, o.num_patches(), o.embed_dim}));
  patch_embed_ = register_module("patch_embed", std::make_shared<torch::nn::Module>("PatchEmbed"));
  proj_ = patch_embed_->register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_chans, o.embed_dim, o.patch_size).stride(o.patch_size)));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i)
    blocks_->push_back(Block(o.embed_dim, o.num_heads, o.mlp_hidden(), o.init_values, o.norm_eps));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.embed_dim}).eps(o.norm_eps)));
}

torch::Tensor VisionTransformerImpl::embed_patches(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != options_.in_chans || images.size(2) != options_.img_size ||
      images.size(3) != options_.img_size)
    throw std::runtime_error("model " + options_.arch + ": input: found shape " + c10::str(images.sizes()) +
                             ", expected [B, " + std::to_string(options_.in_chans) + ", " +
                             std::to_string(options_.img_size) + ", " + std::to_string(options_.img_size) + "]");
  return proj_->forward(images).flatten(2).transpose(1, 2);
}

torch::Tensor VisionTransformerImpl::add_position_and_prefix(const torch::Tensor& patch_tokens) {
  const int64_t batch = patch_tokens.size(0);
  return torch::cat({cls_token_.expand({batch, -1, -1}), reg_token_.expand({batch, -1, -1}), patch_tokens + pos_embed_},
                    1);
}

torch::Tensor VisionTransformerImpl::forward_block(int64_t index, const torch::Tensor& tokens) {
  return blocks_[index]->as<BlockImpl>()->forward(tokens);
}

torch::Tensor VisionTransformerImpl::final_norm(const torch::Tensor& tokens) { return norm_->forward(tokens); }

torch::Tensor VisionTransformerImpl::forward_tokens(const torch::Tensor& tokens) {
  auto x = tokens;
  for (int64_t i = 0; i < options_.depth; ++i) x = forward_block(i, x);
  return final_norm(x);
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images) {
  return forward_tokens(add_position_and_prefix(embed_patches(images)));
}

torch::Tensor VisionTransformerImpl::forward_embedding(const torch::Tensor& images, Pool pool) {
  return pool_tokens(forward_features(images), pool, options_.num_prefix_tokens());
}

void VisionTransformerImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // timm's VisionTransformer.init_weights(mode=""): pos_embed trunc-normal 0.02, cls and
  // register tokens N(0, 1e-6^2), Linear weights trunc-normal 0.02 with zero bias; the patch
  // conv keeps PyTorch's default (kaiming-uniform a=sqrt(5): U(+-1/sqrt(fan_in)) for weight
  // and bias); LayerNorms ones/zeros; LayerScale gammas init_values.
  init_param(pos_embed_, [&](at::Tensor& t) { trunc_normal(t, 0.02, gen); });
  init_param(cls_token_, [&](at::Tensor& t) { t.normal_(0.0, 1e-6, gen); });
  init_param(reg_token_, [&](at::Tensor& t) { t.normal_(0.0, 1e-6, gen); });
  const double bound = 1.0 / std::sqrt(static_cast<double>(proj_->weight[0].numel()));
  init_param(proj_->weight, [&](at::Tensor& t) { t.uniform_(-bound, bound, gen); });
  init_param(proj_->bias, [&](at::Tensor& t) { t.uniform_(-bound, bound, gen); });
  for (auto& module : blocks_->modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::LinearImpl>()) {
      init_param(linear->weight, [&](at::Tensor& t) { trunc_normal(t, 0.02, gen); });
      linear->bias.zero_();
    } else if (auto* norm = module->as<torch::nn::LayerNormImpl>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    } else if (auto* scale = module->as<LayerScaleImpl>()) {
      scale->gamma.fill_(options_.init_values);
    }
  }
  norm_->weight.fill_(1.0);
  norm_->bias.zero_();
}

torch::Tensor pool_tokens(const torch::Tensor& tokens, Pool pool, int64_t num_prefix) {
  switch (pool) {
    case Pool::kMeanAll: return tokens.mean(1);
    case Pool::kAvg: return tokens.slice(1, num_prefix).mean(1);
    case Pool::kCls: return tokens.select(1, 0);
  }
  throw std::logic_error("pool_tokens: unknown Pool value");
}

}  // namespace gf::model
