#include "model/arch_registry.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace gf::model {
namespace {

struct ArchEntry {
  const char* name;
  const char* timm_model;  // the timm registration this network is built from
  int64_t embed_dim, depth, num_heads;
};

// The timm models' own registered sizes; the test variant is vit_small_patch14_reg4_dinov2
// with smaller kwargs, exactly as the fixtures build it.
constexpr ArchEntry kArchs[] = {
    {"vit_small_patch14_reg4", "vit_small_patch14_reg4_dinov2", 384, 12, 6},
    {"vit_base_patch14_reg4", "vit_base_patch14_reg4_dinov2", 768, 12, 12},
    {"vit_large_patch14_reg4", "vit_large_patch14_reg4_dinov2", 1024, 24, 16},
    {"vit_tiny_patch14_reg4", "vit_small_patch14_reg4_dinov2", 96, 3, 3},
};

const ArchEntry* find_arch(const std::string& name) {
  for (const auto& entry : kArchs)
    if (name == entry.name) return &entry;
  return nullptr;
}

const ArchEntry& timm_entry(const std::string& timm_model) {
  for (const auto& entry : kArchs)
    if (timm_model == entry.timm_model) return entry;  // the first one is the timm model itself
  throw std::logic_error("arch registry: no entry for timm model " + timm_model);
}

std::string joined_names() {
  std::string names;
  for (const auto& entry : kArchs) names += (names.empty() ? "" : ", ") + std::string(entry.name);
  return names;
}

}  // namespace

std::vector<std::string> arch_names() {
  std::vector<std::string> names;
  for (const auto& entry : kArchs) names.emplace_back(entry.name);
  return names;
}

VitOptions arch_options(const std::string& arch, int64_t img_size) {
  const ArchEntry* entry = find_arch(arch);
  if (!entry) throw std::runtime_error("arch: found \"" + arch + "\", expected one of " + joined_names());
  VitOptions options;
  if (img_size <= 0 || img_size % options.patch_size != 0)
    throw std::runtime_error("img_size: found " + std::to_string(img_size) + ", expected a positive multiple of " +
                             std::to_string(options.patch_size));
  options.arch = entry->name;
  options.img_size = img_size;
  options.embed_dim = entry->embed_dim;
  options.depth = entry->depth;
  options.num_heads = entry->num_heads;
  return options;
}

std::string timm_model_name(const VitOptions& options) {
  if (const ArchEntry* entry = find_arch(options.arch)) return entry->timm_model;
  return kArchs[0].timm_model;  // any width is expressible as kwargs of the small model
}

std::string timm_kwargs_json(const VitOptions& options) {
  const ArchEntry& base = timm_entry(timm_model_name(options));
  const VitOptions defaults;  // timm's registered values for everything but the sizes
  nlohmann::json kwargs = {{"img_size", options.img_size}, {"num_classes", 0}};
  if (options.embed_dim != base.embed_dim) kwargs["embed_dim"] = options.embed_dim;
  if (options.depth != base.depth) kwargs["depth"] = options.depth;
  if (options.num_heads != base.num_heads) kwargs["num_heads"] = options.num_heads;
  if (options.patch_size != defaults.patch_size) kwargs["patch_size"] = options.patch_size;
  if (options.in_chans != defaults.in_chans) kwargs["in_chans"] = options.in_chans;
  if (options.mlp_ratio != defaults.mlp_ratio) kwargs["mlp_ratio"] = options.mlp_ratio;
  if (options.num_reg_tokens != defaults.num_reg_tokens) kwargs["reg_tokens"] = options.num_reg_tokens;
  if (options.init_values != defaults.init_values) kwargs["init_values"] = options.init_values;
  // Python's json.dumps(sort_keys=True) spacing, as timm-side tools write it.
  std::string text = "{";
  for (auto it = kwargs.begin(); it != kwargs.end(); ++it)
    text += (it == kwargs.begin() ? "\"" : ", \"") + it.key() + "\": " + it.value().dump();
  return text + "}";
}

std::string arch_for_width(int64_t embed_dim, int64_t patch_size) {
  if (patch_size != VitOptions{}.patch_size) return "";
  for (const auto& entry : kArchs)
    if (entry.embed_dim == embed_dim) return entry.name;
  return "";
}

int64_t registered_num_heads(int64_t embed_dim) {
  for (const auto& entry : kArchs)
    if (entry.embed_dim == embed_dim) return entry.num_heads;
  return 0;
}

double forward_flops(const VitOptions& o) {
  const double tokens = static_cast<double>(o.num_tokens());
  const double patches = static_cast<double>(o.num_patches());
  const double dim = static_cast<double>(o.embed_dim);
  const double hidden = static_cast<double>(o.mlp_hidden());
  const double patch_embed = 2.0 * patches * dim * static_cast<double>(o.in_chans * o.patch_size * o.patch_size);
  const double per_block = 2.0 * tokens * dim * (3.0 * dim)  // qkv
                           + 2.0 * 2.0 * tokens * tokens * dim  // q k^T and attn v
                           + 2.0 * tokens * dim * dim           // proj
                           + 2.0 * 2.0 * tokens * dim * hidden;  // fc1 and fc2
  return patch_embed + static_cast<double>(o.depth) * per_block;
}

int64_t parameter_count(const VitOptions& o) {
  const int64_t d = o.embed_dim;
  const int64_t hidden = o.mlp_hidden();
  const int64_t tokens = d * (1 + o.num_reg_tokens + o.num_patches());
  const int64_t patch_embed = d * o.in_chans * o.patch_size * o.patch_size + d;
  const int64_t block = 2 * d               // norm1
                        + 3 * d * d + 3 * d  // qkv
                        + d * d + d          // proj
                        + d                  // ls1
                        + 2 * d              // norm2
                        + hidden * d + hidden + d * hidden + d  // fc1, fc2
                        + d;                 // ls2
  return tokens + patch_embed + o.depth * block + 2 * d;
}

}  // namespace gf::model
