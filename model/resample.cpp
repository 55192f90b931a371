// timm's checkpoint_filter_fn for the DINOv2-with-registers family: Meta's layout
// converted (_convert_dinov2), position embeddings resampled (resample_abs_pos_embed).
#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>
#include <regex>
#include <stdexcept>

#include "model/weights.hpp"

namespace gf::model {
namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

}  // namespace

StateDict convert_meta_dinov2(StateDict state) {
  if (!find_tensor(state, "mask_token").defined()) return state;
  StateDict out;
  const at::Tensor registers = find_tensor(state, "register_tokens");
  if (registers.defined()) {
    // Neither cls nor register tokens get a position embedding in timm's model, so the
    // cls row of pos_embed is folded into the token.
    const at::Tensor cls = find_tensor(state, "cls_token");
    const at::Tensor pos = find_tensor(state, "pos_embed");
    if (!cls.defined() || !pos.defined())
      throw std::runtime_error("DINOv2 checkpoint: register_tokens present but cls_token or pos_embed missing");
    out.emplace_back("reg_token", registers);
    out.emplace_back("cls_token", cls + pos.select(1, 0));
    out.emplace_back("pos_embed", pos.slice(1, 1).contiguous());
  }
  static const std::regex kW12(R"(^blocks\.\d+\.mlp\.w12\.(weight|bias))");
  static const std::regex kW3(R"(^blocks\.\d+\.mlp\.w3\.(weight|bias))");
  for (auto& [name, tensor] : state) {
    if (name == "mask_token") continue;
    if (registers.defined() && (name == "register_tokens" || name == "cls_token" || name == "pos_embed")) continue;
    if (std::regex_search(name, kW12))
      out.emplace_back(replace_all(name, "w12", "fc1"), tensor);
    else if (std::regex_search(name, kW3))
      out.emplace_back(replace_all(name, "w3", "fc2"), tensor);
    else
      out.emplace_back(name, tensor);
  }
  return out;
}

at::Tensor resample_abs_pos_embed(const at::Tensor& pos_embed, int64_t new_h, int64_t new_w, int64_t num_prefix_tokens) {
  const int64_t rows = pos_embed.size(1);
  if (rows == new_h * new_w + num_prefix_tokens && new_h == new_w) return pos_embed;
  const int64_t grid_rows = rows - num_prefix_tokens;
  const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(grid_rows)));
  if (side * side != grid_rows)
    throw std::runtime_error("pos_embed: found " + std::to_string(grid_rows) + " grid rows (after " +
                             std::to_string(num_prefix_tokens) + " prefix rows), expected a square grid");
  const at::Tensor prefix = pos_embed.slice(1, 0, num_prefix_tokens);
  const int64_t dim = pos_embed.size(2);
  // The same view sequence as timm (reshape, permute to [1, D, H, W]) so the kernel sees the
  // same strides: F.interpolate(bicubic, antialias=True, align_corners=False).
  auto grid = pos_embed.slice(1, num_prefix_tokens).to(at::kFloat).reshape({1, side, side, dim}).permute({0, 3, 1, 2});
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{new_h, new_w})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, -1, dim}).to(pos_embed.scalar_type());
  return num_prefix_tokens > 0 ? at::cat({prefix, grid}, 1) : grid;
}

StateDict adapt_to_model(StateDict state, const VitOptions& options) {
  state = convert_meta_dinov2(std::move(state));
  for (auto& [name, tensor] : state)
    if (name == "pos_embed" && tensor.dim() == 3 && tensor.size(1) != options.num_patches())
      tensor = resample_abs_pos_embed(tensor, options.grid(), options.grid(), 0);
  return state;
}

}  // namespace gf::model
