#include "model/param_groups.hpp"

#include <set>

namespace gf::model {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ParamGroups split_weight_decay(const NamedTensors& named, TokenDecay token_decay) {
  // The names timm's VisionTransformer.no_weight_decay() lists; only used on request, the
  // published run passed no such list.
  static const std::set<std::string> kTokenNames = {"cls_token", "reg_token", "pos_embed"};
  ParamGroups groups;
  for (const auto& [name, tensor] : named) {
    const bool no_decay = tensor.dim() <= 1 || ends_with(name, ".bias") ||
                          (token_decay == TokenDecay::kExclude && kTokenNames.count(name) > 0);
    (no_decay ? groups.no_decay : groups.decay).emplace_back(name, tensor);
  }
  return groups;
}

}  // namespace gf::model
