#pragma once
// Named architectures (timm's registry idea: a name is nothing but VitOptions), the timm
// model each one corresponds to, and its analytic forward cost.
#include <cstdint>
#include <string>
#include <vector>

#include "model/vit.hpp"

namespace gf::model {

// Every registered name, in a stable order: vit_small/base/large_patch14_reg4 and the
// test variant vit_tiny_patch14_reg4 (96 dims, 3 heads, depth 3: the fixtures' model).
std::vector<std::string> arch_names();

// The options registered for `arch` at `img_size` (a positive multiple of 14). Depth and
// other fields may be changed afterwards (tests build shallower variants).
// Throws for an unknown name or a bad size, naming the registered names.
VitOptions arch_options(const std::string& arch, int64_t img_size);

// The timm model that builds the same network (`vit_small_patch14_reg4_dinov2`, ...).
std::string timm_model_name(const VitOptions& options);

// Keyword arguments that, given to timm.create_model(timm_model_name(options), ...), build
// exactly this network with no head: img_size, num_classes=0, and every field that differs
// from what timm registers for that model (embed_dim, depth, num_heads, ...). As a JSON
// object text with sorted keys, e.g. {"depth": 3, "embed_dim": 96, "img_size": 112, ...}.
std::string timm_kwargs_json(const VitOptions& options);

// The registered name whose width, heads and patch size match (depth and image size may
// differ), or "" when none does. Used to name weights read from a file.
std::string arch_for_width(int64_t embed_dim, int64_t patch_size);
int64_t registered_num_heads(int64_t embed_dim);  // 0 when no registered arch has this width

// Analytic forward FLOPs per image: every multiply-add of the patch embedding, the qkv,
// attention (QK^T and AV), projection and MLP matmuls counted as 2 FLOPs; norms, softmax,
// GELU and additions are left out (they are < 1% at these sizes).
double forward_flops(const VitOptions& options);

// Trainable parameter count of the encoder built with these options.
int64_t parameter_count(const VitOptions& options);

}  // namespace gf::model
