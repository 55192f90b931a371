#pragma once
// What `greenfound export` and `greenfound inspect` do with weight files, as library calls.
#include <cstdint>
#include <ostream>
#include <string>

#include "model/vit.hpp"
#include "model/weights.hpp"

namespace gf::model {

struct ExportOptions {
  std::string arch;      // registry name; "" = inferred from the tensors (infer_vit_options)
  int64_t img_size = 0;  // 0 = the size the stored pos_embed grid was trained for; else resampled
  ExtraKeys extra = ExtraKeys::kReject;  // kIgnore drops keys outside the encoder (projector head)
};

// Loads `state` strictly into the encoder it describes (Meta's layout converted, pos_embed
// resampled as timm does) and writes that encoder to `out_path` as timm-loadable safetensors
// with export_metadata() plus `extra_metadata`. `source` names the input in errors. Returns
// the options of the written encoder.
VitOptions export_encoder(const StateDict& state, const std::string& source, const std::string& out_path,
                          const ExportOptions& options, const Metadata& extra_metadata = {});

// `greenfound inspect WEIGHTS`: format, size, sha256, layout, inferred architecture,
// parameter count, a key summary (blocks folded into one line per block key), extra keys
// and, for safetensors, the metadata.
void print_weights_summary(const std::string& path, std::ostream& out);

// True when `path` is a regular file that starts like a .safetensors or torch.save file.
bool looks_like_weights_file(const std::string& path);

}  // namespace gf::model
