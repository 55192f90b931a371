#include "model/weights.hpp"

#include <ATen/ATen.h>

#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "model/arch_registry.hpp"
#include "model/printable.hpp"

namespace gf::model {
namespace {

std::string shape_text(at::IntArrayRef sizes) { return c10::str(sizes); }

// "[a, b, c]" with at most `limit` names, then the count of the rest.
std::string name_list(const std::vector<std::string>& names, size_t limit = 16) {
  std::string text = "[";
  for (size_t i = 0; i < names.size() && i < limit; ++i) text += (i ? ", " : "") + printable(names[i]);
  if (names.size() > limit) text += ", ... " + std::to_string(names.size() - limit) + " more";
  return text + "]";
}

int64_t block_count(const StateDict& state) {
  int64_t depth = 0;
  for (const auto& [name, tensor] : state) {
    if (name.rfind("blocks.", 0) != 0) continue;
    const size_t dot = name.find('.', 7);
    try {
      depth = std::max<int64_t>(depth, std::stoll(name.substr(7, dot - 7)) + 1);
    } catch (const std::exception&) {
      // a key like "blocks.x" that is no block index: left for strict loading to report
    }
  }
  return depth;
}

}  // namespace

at::Tensor find_tensor(const StateDict& state, const std::string& name) {
  for (const auto& [n, t] : state)
    if (n == name) return t;
  return {};
}

bool has_torch_zip_magic(const char* head, int64_t size) {
  return size >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
}

StateDict read_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  char magic[4] = {};
  in.read(magic, 4);
  if (has_torch_zip_magic(magic, in.gcount())) return read_torch_state_dict(path);
  return read_safetensors(path).tensors;
}

StateDict model_state_dict(const torch::nn::Module& model) {
  StateDict state;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) state.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers(/*recurse=*/true)) state.emplace_back(item.key(), item.value());
  return state;
}

void require_finite(const StateDict& state, const std::string& source) {
  for (const auto& [name, tensor] : state) {
    if (!tensor.is_floating_point()) continue;
    const int64_t bad = tensor.numel() - at::isfinite(tensor).sum().item<int64_t>();
    if (bad == 0) continue;
    const int64_t nan = at::isnan(tensor).sum().item<int64_t>();
    throw std::runtime_error(source + ": " + printable(name) + ": found " + std::to_string(bad) + " of " +
                             std::to_string(tensor.numel()) + " values not finite (" + std::to_string(nan) + " NaN, " +
                             std::to_string(bad - nan) + " Inf), expected finite weights");
  }
}

void load_state_dict(torch::nn::Module& model, const StateDict& state, const std::string& source, ExtraKeys extra) {
  std::unordered_map<std::string, at::Tensor> targets;
  std::vector<std::string> order;
  for (const auto& [name, tensor] : model_state_dict(model)) {
    targets.emplace(name, tensor);
    order.push_back(name);
  }
  std::vector<std::string> unexpected, mis_shaped, repeated;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : state) {
    if (!seen.insert(name).second) {
      repeated.push_back(name);
      continue;
    }
    auto it = targets.find(name);
    if (it == targets.end()) {
      if (extra == ExtraKeys::kReject) unexpected.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      mis_shaped.push_back(name + " found " + shape_text(tensor.sizes()) + " expected " + shape_text(it->second.sizes()));
    }
  }
  std::vector<std::string> missing;
  for (const auto& name : order)
    if (!seen.count(name)) missing.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !mis_shaped.empty() || !repeated.empty()) {
    std::string problems;
    auto add = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      problems += (problems.empty() ? "" : "; ") + std::string(what) + " " + std::to_string(names.size()) + " " +
                  name_list(names);
    };
    add("missing", missing);
    add("unexpected", unexpected);
    add("wrong shape", mis_shaped);
    add("repeated", repeated);
    throw std::runtime_error(source + ": keys do not match the model (" + problems + ")");
  }
  require_finite(state, source);
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : state) {
    auto it = targets.find(name);
    if (it != targets.end()) it->second.copy_(tensor);
  }
}

void load_weights_file(VisionTransformerImpl& model, const std::string& path, ExtraKeys extra) {
  load_state_dict(model, adapt_to_model(read_weights(path), model.options()), path, extra);
}

VitOptions infer_vit_options(const StateDict& state, const std::string& source) {
  const at::Tensor cls = find_tensor(state, "cls_token");
  const at::Tensor proj = find_tensor(state, "patch_embed.proj.weight");
  const at::Tensor pos = find_tensor(state, "pos_embed");
  if (!cls.defined() || !proj.defined() || !pos.defined() || proj.dim() != 4 || pos.dim() != 3)
    throw std::runtime_error(source + ": found no cls_token, pos_embed and 4-d patch_embed.proj.weight, expected a "
                             "DINOv2-style ViT state dict");
  VitOptions options;
  options.embed_dim = proj.size(0);
  options.in_chans = proj.size(1);
  options.patch_size = proj.size(2);
  options.depth = block_count(state);
  const bool meta_layout = find_tensor(state, "mask_token").defined();
  at::Tensor registers = find_tensor(state, meta_layout ? "register_tokens" : "reg_token");
  options.num_reg_tokens = registers.defined() ? registers.size(1) : 0;
  const at::Tensor fc1 = find_tensor(state, "blocks.0.mlp.fc1.weight");
  if (fc1.defined()) options.mlp_ratio = static_cast<double>(fc1.size(0)) / static_cast<double>(options.embed_dim);
  // Meta's layout gives the cls token a pos_embed row; timm's has the patch grid only.
  const int64_t grid_rows = pos.size(1) - (meta_layout && registers.defined() ? 1 : 0);
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(grid_rows)));
  if (side * side != grid_rows)
    throw std::runtime_error(source + ": pos_embed: found " + std::to_string(pos.size(1)) +
                             " rows, expected a square patch grid");
  options.img_size = side * options.patch_size;
  options.num_heads = registered_num_heads(options.embed_dim);
  options.arch = arch_for_width(options.embed_dim, options.patch_size);
  return options;
}

Metadata export_metadata(const VitOptions& options) {
  return {{"arch", options.arch},
          {"architecture", timm_model_name(options)},
          {"timm_kwargs", timm_kwargs_json(options)},
          {"layout", "timm"},
          {"format", "pt"}};
}

}  // namespace gf::model
