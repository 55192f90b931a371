#pragma once
// Internal to model/: the pre-norm transformer block of timm's VisionTransformer, with
// timm's submodule names (norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2,
// ls2.gamma) so that the parameter names come out as timm's state-dict keys.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cstdint>

namespace gf::model {

// Multi-head self-attention: qkv rows [q|k|v], heads split as (3, heads, head_dim).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t num_heads_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(Attention);

// fc1 -> exact (erf) GELU -> fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Mlp);

// Per-channel scale `gamma` on a residual branch.
class LayerScaleImpl : public torch::nn::Module {
 public:
  LayerScaleImpl(int64_t dim, double init_values);
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }
  torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

// x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))).
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t num_heads, int64_t mlp_hidden, double init_values, double norm_eps);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::LayerNorm norm1_{nullptr};
  Attention attn_{nullptr};
  LayerScale ls1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  LayerScale ls2_{nullptr};
};
TORCH_MODULE(Block);

}  // namespace gf::model
