#pragma once
// The DINOv2-with-registers Vision Transformer, parameter for parameter timm's
// `VisionTransformer` as registered for `vit_*_patch14_reg4_dinov2` (key names included).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <cstdint>
#include <string>

namespace gf::model {

// The largest input side: 320 patches of 14 (102,400 tokens), 11x the published 392 px and
// already ~10^2 GB of attention per image; a larger value is a typo, refused before any tensor
// is allocated (an absurd one would overflow the shapes' byte sizes).
inline constexpr int64_t kMaxImgSize = 4480;

// Keyword arguments of timm's VisionTransformer that the reg4 family uses.
struct VitOptions {
  std::string arch = "vit_small_patch14_reg4";  // registry name (model/arch_registry.hpp)
  int64_t img_size = 392;       // square input, a multiple of patch_size, at most kMaxImgSize
  int64_t patch_size = 14;
  int64_t in_chans = 3;
  int64_t embed_dim = 384;
  int64_t depth = 12;
  int64_t num_heads = 6;
  double mlp_ratio = 4.0;
  int64_t num_reg_tokens = 4;
  double init_values = 1e-5;    // LayerScale gamma init
  double norm_eps = 1e-6;       // every LayerNorm of the encoder

  int64_t grid() const { return img_size / patch_size; }
  int64_t num_patches() const { return grid() * grid(); }
  int64_t num_prefix_tokens() const { return 1 + num_reg_tokens; }
  int64_t num_tokens() const { return num_prefix_tokens() + num_patches(); }
  // Width of each block's MLP: int(embed_dim * mlp_ratio), as timm computes it.
  int64_t mlp_hidden() const { return static_cast<int64_t>(static_cast<double>(embed_dim) * mlp_ratio); }
};

// Embedding pooling after the final norm (DESIGN.md, Model).
enum class Pool { kMeanAll, kAvg, kCls };
Pool parse_pool(const std::string& name);  // "mean_all" | "avg" | "cls"
std::string pool_name(Pool pool);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(VitOptions options);

  // [B, C, H, W] -> [B, N, D]: the conv patch embedding, flattened row-major.
  torch::Tensor embed_patches(const torch::Tensor& images);
  // [B, N, D] -> [B, 5 + N, D]: pos_embed added to patches, then CLS and registers prepended.
  torch::Tensor add_position_and_prefix(const torch::Tensor& patch_tokens);
  // Blocks then the final norm, on a full token sequence.
  torch::Tensor forward_tokens(const torch::Tensor& tokens);
  // timm's forward_features: all tokens after the final norm, [B, 5 + N, D].
  torch::Tensor forward_features(const torch::Tensor& images);
  torch::Tensor forward_embedding(const torch::Tensor& images, Pool pool);
  // One block (0-based) on a full token sequence, and the final norm alone: the pieces of
  // forward_tokens, for per-block inspection or activation checkpointing.
  torch::Tensor forward_block(int64_t index, const torch::Tensor& tokens);
  torch::Tensor final_norm(const torch::Tensor& tokens);
  int64_t num_blocks() const { return options_.depth; }

  const VitOptions& options() const { return options_; }

  // Random init (truncated normal weights as timm's init, seeded), for runs without a weights file.
  void init_weights(uint64_t seed);

 private:
  VitOptions options_;
  torch::Tensor cls_token_, reg_token_, pos_embed_;
  std::shared_ptr<torch::nn::Module> patch_embed_;  // holds proj_, for timm's key "patch_embed.proj.*"
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(VisionTransformer);

// Pools a [B, T, D] token tensor that starts with `num_prefix` CLS/register tokens.
torch::Tensor pool_tokens(const torch::Tensor& tokens, Pool pool, int64_t num_prefix);

}  // namespace gf::model
