#include "model/vit_block.hpp"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace gf::model {
namespace {

// at::linear, as torch.nn.functional.linear (timm) calls it: one addmm with the bias for a
// contiguous [B, N, D] input. LibTorch's C++ Linear::forward instead runs matmul and then a
// separate in-place bias add over the whole output.
torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return at::linear(x, layer->weight, layer->bias);
}

}  // namespace

AttentionImpl::AttentionImpl(int64_t dim, int64_t num_heads) : num_heads_(num_heads) {
  if (num_heads <= 0 || dim % num_heads != 0)
    throw std::runtime_error("model: embed_dim " + std::to_string(dim) + " is not divisible by num_heads " +
                             std::to_string(num_heads));
  qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
  // unbind, not three selects: its backward stacks the three gradients into one tensor, where
  // each select's would zero-fill a full-size gradient and the three would then be summed.
  const auto qkv = linear(x, qkv_).reshape({batch, tokens, 3, num_heads_, dim / num_heads_}).permute({2, 0, 3, 1, 4}).unbind(0);
  // The fused kernel (timm's fused_attn path); its default scale is head_dim^-0.5, timm's.
  auto out = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]);
  return linear(out.transpose(1, 2).reshape({batch, tokens, dim}), proj_);
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return linear(at::gelu(linear(x, fc1_)), fc2_);
}

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_values) {
  gamma = register_parameter("gamma", torch::full({dim}, init_values));
}

BlockImpl::BlockImpl(int64_t dim, int64_t num_heads, int64_t mlp_hidden, double init_values, double norm_eps) {
  const auto norm_options = torch::nn::LayerNormOptions({dim}).eps(norm_eps);
  norm1_ = register_module("norm1", torch::nn::LayerNorm(norm_options));
  attn_ = register_module("attn", Attention(dim, num_heads));
  ls1_ = register_module("ls1", LayerScale(dim, init_values));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(norm_options));
  mlp_ = register_module("mlp", Mlp(dim, mlp_hidden));
  ls2_ = register_module("ls2", LayerScale(dim, init_values));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto y = x + ls1_->forward(attn_->forward(norm1_->forward(x)));
  return y + ls2_->forward(mlp_->forward(norm2_->forward(y)));
}

}  // namespace gf::model
