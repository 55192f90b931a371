#pragma once
// Weight files: .safetensors read/write, PyTorch torch.save state dicts (.pth) read, Meta's
// original DINOv2 layout converted and pos_embed resampled as timm's checkpoint_filter_fn
// does, and strict loading into a VisionTransformer with timm's key names.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/vit.hpp"

namespace gf::model {

// An ordered state dict: names and tensors in the order they are stored or registered.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;
// The string-to-string `__metadata__` map of a safetensors header.
using Metadata = std::map<std::string, std::string>;

// The tensor named `name`, or an undefined tensor when absent.
at::Tensor find_tensor(const StateDict& state, const std::string& name);

// Both readers refuse a tensor name longer than this: real ones are under 100 bytes, and the
// name patterns matched with std::regex (which recurses once per character: a 300 KB name
// overflowed the stack of `inspect`) stay shallow.
inline constexpr size_t kMaxTensorNameBytes = 1024;

// ---- safetensors ----
struct SafetensorsContents {
  StateDict tensors;  // in file (data offset) order
  Metadata metadata;
};
// Reads every tensor (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL) into contiguous CPU tensors.
// Throws naming the file and the bad field for a truncated file or a malformed header, before
// allocating: repeated keys, offsets that overlap, leave gaps or pass the end, sizes that
// overflow (limits in safetensors.cpp). Names and metadata are returned as written: escape
// them (model/printable.hpp) before showing them.
SafetensorsContents read_safetensors(const std::string& path);
// Writes tensors in the given order (contiguous CPU copies are made as needed), header
// padded with spaces to a multiple of 8. Atomic: temp file, fsync, rename.
void write_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {});

// ---- torch.save files ----
// Reads a torch.save zip archive holding a state dict (an OrderedDict/dict of tensors); a
// dict nesting it under "state_dict" or "model" is unwrapped and a "module." prefix
// (DataParallel/DDP) stripped, as timm's checkpoint loading does. A hostile file (reference
// cycles, deep nesting, pickle or storages larger than declared or than the file, tensors
// outside their storage) gets one error line naming the file and key (limits in torch_pickle.cpp).
// Tensors are views of their storages with the strides torch.save wrote, as torch.load gives.
StateDict read_torch_state_dict(const std::string& path);

// Either format, chosen by the file's first bytes (zip archive = torch.save).
StateDict read_weights(const std::string& path);

// True when `head`, the first `size` bytes of a file, begin with the zip local-file-header
// signature "PK\3\4" that torch.save archives start with. The one format test read_weights,
// looks_like_weights_file and print_weights_summary share.
bool has_torch_zip_magic(const char* head, int64_t size);

// ---- layout conversion and resampling (timm's checkpoint_filter_fn for this family) ----
// Meta's original DINOv2 layout (has `mask_token`): mask_token dropped, register_tokens ->
// reg_token, cls_token += pos_embed[:, 0], pos_embed = pos_embed[:, 1:], mlp.w12/w3 ->
// fc1/fc2. A dict without mask_token is returned unchanged. Order is preserved.
StateDict convert_meta_dinov2(StateDict state);

// timm's resample_abs_pos_embed: [1, P + H0*W0, D] (P prefix rows kept as they are, the
// old grid square) -> [1, P + new_h*new_w, D] by antialiased bicubic interpolation
// (PyTorch F.interpolate(mode="bicubic", antialias=True, align_corners=False)).
at::Tensor resample_abs_pos_embed(const at::Tensor& pos_embed, int64_t new_h, int64_t new_w,
                                  int64_t num_prefix_tokens = 0);

// convert_meta_dinov2, then pos_embed resampled to the model's grid when it differs.
StateDict adapt_to_model(StateDict state, const VitOptions& options);

// ---- the model's state ----
// Parameters (and buffers) in registration order = timm's state-dict order. The tensors
// share storage with the model.
StateDict model_state_dict(const torch::nn::Module& model);

// Throws naming `source`, the first tensor holding NaN or Inf and how many such values it holds:
// weights that are not finite train and embed to NaN, so they are refused when read.
void require_finite(const StateDict& state, const std::string& source);

enum class ExtraKeys { kReject, kIgnore };
// Copies `state` into the model. Missing keys, mis-shaped keys and (with kReject) unknown
// keys are all collected and reported in one error naming `source`; then require_finite.
void load_state_dict(torch::nn::Module& model, const StateDict& state, const std::string& source,
                     ExtraKeys extra = ExtraKeys::kReject);

// read_weights + adapt_to_model + load_state_dict.
void load_weights_file(VisionTransformerImpl& model, const std::string& path,
                       ExtraKeys extra = ExtraKeys::kReject);

// Options of the network a timm-layout (or Meta-layout) state dict was saved from: width,
// depth, patch size and img_size (from the pos_embed grid) read off the tensors, heads and
// `arch` from the registry (arch "" when no registered width matches; heads then 0).
// Throws naming `source` when the dict is not a ViT of this family.
VitOptions infer_vit_options(const StateDict& state, const std::string& source = "state dict");

// The safetensors metadata greenfound writes with encoder weights: arch, timm_model,
// timm_kwargs (JSON), layout "timm", format "pt" (what safetensors' torch loader expects).
Metadata export_metadata(const VitOptions& options);

}  // namespace gf::model
