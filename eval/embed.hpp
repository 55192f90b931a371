#pragma once
// `greenfound embed`: frozen-encoder embeddings of an image folder or a packed dataset,
// computed by every rank on its own contiguous slice and written by rank 0 as one file in
// dataset order (eval/embeddings_file.hpp), whatever the number of ranks.
//
// Preprocessing, both forms (data::eval_transform, the loader's eval transform): 8-bit RGB
// resized to img_size x img_size only when not already that size, by torchvision's
// F.resize(bilinear, antialias=True) on uint8 tensors (ATen's antialiased bilinear, rounded
// back to uint8), then x/255 and (x - 0.5) / 0.5. Chosen because the published evaluation
// ran torchvision's Resize((392, 392)) on PIL images: PIL's bilinear is the same triangle
// filter widened by the scale when shrinking; the two differ only by PIL's uint8 rounding
// between its horizontal and vertical passes (at most 1 grey level).
// The published evaluation resized the raw images (no border crop). The folder form does
// that; a packed dataset holds what `pack` stored: packed with `--preprocess none` the raw
// images (then embedding is the published evaluation), by default the border-cropped,
// padded training preprocessing (a note says so).
#include <cstdint>
#include <string>

#include "energy/energy_options.hpp"
#include "eval/embeddings_file.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"

namespace gf::eval {

struct EmbedConfig {
  std::string images_dir;       // folder form: every .png/.jpg/.jpeg, sorted by file name
  std::string data_dir;         // packed dataset form
  std::string split = "all";    // dataset form: "train" | "test" | "all"
  std::string weights;          // weights file (.safetensors / .pth), or
  model::StateDict state;       // encoder tensors given directly (a checkpoint's student)
  std::string arch;             // "" = inferred from the weights' shapes
  std::string weights_sha256;   // recorded in the file; computed from `weights` when empty
  bool random_init = false;     // no weights: timm-style random init from `seed` (tests, bench)
  int64_t pixels = 0;           // > 0: no encoder; the image area-averaged to pixels x pixels, flattened
                                // (the raw-pixel baseline a probe table needs beside the encoders)
  uint64_t seed = 0;
  int64_t img_size = 392;
  model::Pool pool = model::Pool::kMeanAll;
  std::string out;
  int64_t batch_size = 32;
  EmbeddingDtype dtype = EmbeddingDtype::kFloat32;
  int threads = 0;              // torch intra-op threads per rank; 0 = automatic (base::resolve_threads)
  int workers = 0;              // dataset form: decode threads per rank; 0 = hardware threads
  std::string device = "auto";  // "cpu", "cuda" (GPU local_rank), "auto" = cuda when available
  std::string precision = "fp32";  // "fp32" (IEEE on the GPU too: TF32 off) | "bf16" (autocast, CUDA only)
  bool track_energy = true;     // energy.csv / energy.json in energy_dir, summary printed by rank 0
  std::string energy_dir;       // "" = the folder of `out`
  energy::EnergyOptions energy;
  bool verbose = true;          // progress and the summary lines on stdout/stderr
};

struct EmbedSummary {
  int64_t images = 0;            // embedded by the whole job
  int64_t dim = 0;
  double seconds = 0;            // wall time of the embedding loop (slowest rank)
  double images_per_second = 0;  // images / seconds
  int64_t bytes_per_embedding = 0;  // dim x element size of the stored dtype
};

// Collective over this process's world (dist::init_world); a stage is a function of its
// config, as train::pretrain and run_probe are.
EmbedSummary run_embed(const EmbedConfig& config);

}  // namespace gf::eval
