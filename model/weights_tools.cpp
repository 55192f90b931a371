#include "model/weights_tools.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>

#include "base/sha256.hpp"
#include "model/arch_registry.hpp"
#include "model/printable.hpp"

namespace gf::model {
namespace {

// Keys of the encoder in either layout (timm's, or Meta's original DINOv2 one).
bool is_encoder_key(const std::string& name) {
  for (const char* exact : {"cls_token", "reg_token", "pos_embed", "register_tokens", "mask_token"})
    if (name == exact) return true;
  for (const char* prefix : {"patch_embed.", "blocks.", "norm."})
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string grouped(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string megabytes(uintmax_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

std::string padded(const std::string& text, size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

// One line per distinct key, with "blocks.N." folded into "blocks.{0..D-1}." across blocks.
void print_key_lines(const StateDict& state, std::ostream& out) {
  static const std::regex kBlockKey(R"(^blocks\.(\d+)\.(.+)$)");
  struct Line {
    std::string name, shape;
    std::set<int64_t> blocks;
    bool same_shape = true;
  };
  std::vector<Line> lines;
  std::map<std::string, size_t> block_line;  // key within a block -> index in lines
  for (const auto& [name, tensor] : state) {
    const std::string shape = c10::str(tensor.sizes());
    std::smatch m;
    if (!std::regex_match(name, m, kBlockKey)) {
      lines.push_back({name, shape, {}, true});
      continue;
    }
    const int64_t block = std::stoll(m[1]);
    auto [it, added] = block_line.emplace(m[2], lines.size());
    if (added) lines.push_back({m[2], shape, {}, true});
    Line& line = lines[it->second];
    line.blocks.insert(block);
    line.same_shape = line.same_shape && line.shape == shape;
  }
  for (const auto& line : lines) {
    std::string name = line.name, count;
    if (!line.blocks.empty()) {
      const int64_t lo = *line.blocks.begin(), hi = *line.blocks.rbegin();
      name = "blocks.{" + std::to_string(lo) + ".." + std::to_string(hi) + "}." + line.name;
      count = "x" + std::to_string(line.blocks.size()) + (line.same_shape ? "" : " (shapes differ between blocks)");
    }
    out << "  " << padded(printable(name), 34) << (count.empty() ? line.shape : padded(line.shape, 20) + count) << "\n";
  }
}

}  // namespace

bool looks_like_weights_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char head[9] = {};
  in.read(head, 9);
  if (has_torch_zip_magic(head, in.gcount())) return true;
  return in.gcount() == 9 && head[8] == '{';  // safetensors: 8-byte length, then the JSON header
}

VitOptions export_encoder(const StateDict& state, const std::string& source, const std::string& out_path,
                          const ExportOptions& options, const Metadata& extra_metadata) {
  const VitOptions stored = infer_vit_options(state, source);
  const int64_t img_size = options.img_size > 0 ? options.img_size : stored.img_size;
  VitOptions target;
  if (!options.arch.empty()) {
    target = arch_options(options.arch, img_size);
  } else {
    if (stored.arch.empty())
      throw std::runtime_error(source + ": embed_dim " + std::to_string(stored.embed_dim) + " with patch " +
                               std::to_string(stored.patch_size) +
                               " matches no registered architecture; expected an architecture named (arch)");
    target = stored;
    target.img_size = img_size;
  }
  VisionTransformer model(target);
  load_state_dict(*model, adapt_to_model(state, target), source, options.extra);
  Metadata metadata = export_metadata(target);
  for (const auto& [key, value] : extra_metadata) metadata[key] = value;
  write_safetensors(out_path, model_state_dict(*model), metadata);
  return target;
}

void print_weights_summary(const std::string& path, std::ostream& out) {
  const bool is_zip = [&] {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return has_torch_zip_magic(magic, in.gcount());
  }();
  Metadata metadata;
  StateDict state;
  if (is_zip) {
    state = read_torch_state_dict(path);
  } else {
    auto contents = read_safetensors(path);
    state = std::move(contents.tensors);
    metadata = std::move(contents.metadata);
  }
  out << padded("weights", 12) << path << "\n";
  out << padded("format", 12) << (is_zip ? "torch.save zip (state dict)" : "safetensors") << ", " << state.size()
      << " tensors, " << megabytes(std::filesystem::file_size(path)) << "\n";
  out << padded("sha256", 12) << base::sha256_file(path) << "\n";
  const bool meta_layout = find_tensor(state, "mask_token").defined();
  out << padded("layout", 12)
      << (meta_layout ? "Meta DINOv2 original (mask_token, register_tokens, cls row in pos_embed): converted on load as timm does"
                      : "timm")
      << "\n";
  try {
    const VitOptions o = infer_vit_options(state, path);
    out << padded("arch", 12) << (o.arch.empty() ? "no registered name" : o.arch);
    if (!o.arch.empty()) out << " = timm " << timm_model_name(o) << " " << timm_kwargs_json(o);
    out << "\n" << padded("", 12) << "embed_dim " << o.embed_dim << ", depth " << o.depth << ", heads "
        << (o.num_heads ? std::to_string(o.num_heads) : "?") << ", patch " << o.patch_size << ", " << o.num_reg_tokens
        << " registers, mlp_ratio " << o.mlp_ratio << ", img_size " << o.img_size << " (pos_embed grid " << o.grid()
        << "x" << o.grid() << ")\n";
  } catch (const std::runtime_error& e) {
    out << padded("arch", 12) << "not a DINOv2-style ViT: " << e.what() << "\n";
  }
  int64_t encoder_values = 0, other_values = 0;
  std::set<std::string> dtypes;
  StateDict encoder, others;
  for (const auto& entry : state) {
    dtypes.insert(c10::toString(entry.second.scalar_type()));
    (is_encoder_key(entry.first) ? encoder_values : other_values) += entry.second.numel();
    (is_encoder_key(entry.first) ? encoder : others).push_back(entry);
  }
  std::string dtype_list;
  for (const auto& d : dtypes) dtype_list += (dtype_list.empty() ? "" : ", ") + d;
  out << padded("parameters", 12) << grouped(encoder_values) << " in encoder keys";
  if (other_values > 0) out << ", " << grouped(other_values) << " in other keys";
  out << " (" << dtype_list << ")\n";
  out << padded("keys", 12) << encoder.size() << " in the encoder\n";
  print_key_lines(encoder, out);
  if (!others.empty()) {
    out << padded("other keys", 12) << others.size() << " (not part of the encoder; export drops them with --allow-extra-keys)\n";
    print_key_lines(others, out);
  }
  if (!metadata.empty()) {
    out << "metadata\n";
    // Escaped: a file's metadata must not drive the terminal.
    for (const auto& [key, value] : metadata) out << "  " << padded(printable(key), 16) << printable(value) << "\n";
  }
}

}  // namespace gf::model
