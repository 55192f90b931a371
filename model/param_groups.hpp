#pragma once
// Weight-decay parameter groups as timm's `param_groups_weight_decay`: a parameter of at most
// one dimension, or whose name ends in ".bias", gets no decay (biases, norms, LayerScale
// gammas); every other parameter is decayed — the published run decayed the cls/register
// tokens and position embeddings too (DESIGN.md, Token Reconstruction).
#include <ATen/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace gf::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Which 3-D token parameters are decayed.
enum class TokenDecay {
  kDecay,    // published: cls_token, reg_token and pos_embed are decayed
  kExclude,  // DINOv2 convention: cls_token, reg_token, pos_embed get no decay
};

struct ParamGroups {
  NamedTensors decay;
  NamedTensors no_decay;
};

// Splits `named` (order kept within each group).
ParamGroups split_weight_decay(const NamedTensors& named, TokenDecay token_decay);

}  // namespace gf::model
