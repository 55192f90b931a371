// `greenfound embed`: frozen-encoder embeddings of an image folder or a packed dataset,
// one HDF5 file whatever the rank count (eval/embed.hpp).
#include <filesystem>
#include <memory>
#include <string>

#include "base/output_paths.hpp"
#include "base/sha256.hpp"
#include "eval/embed.hpp"
#include "launcher/commands.hpp"
#include "launcher/shared_options.hpp"
#include "model/weights.hpp"
#include "train/checkpoint.hpp"

namespace gf::launcher {
namespace {

struct EmbedFlags {
  eval::EmbedConfig config;
  std::string checkpoint;
  std::string pool = "mean_all";
  std::string dtype = "float32";
  int64_t init_seed = -1;
  bool no_energy = false;
};

const FieldFlags kEmbedFlags = {{"images_dir", "--images"}, {"data_dir", "--data"}, {"out", "--out"},
                                 {"batch_size", "--batch-size"}, {"arch", "--arch"}, {"weights", "--weights"},
                                 {"dtype", "--dtype"}, {"device", "--device"},
                                 {"precision", "--precision"}};

void run_embed(EmbedFlags flags) {
  eval::EmbedConfig& config = flags.config;
  config.pool = model::parse_pool(flags.pool);
  config.dtype = eval::parse_embedding_dtype(flags.dtype);
  config.track_energy = !flags.no_energy;
  const int sources =
      !config.weights.empty() + !flags.checkpoint.empty() + (flags.init_seed >= 0) + (config.pixels > 0);
  if (sources != 1)
    throw std::runtime_error("embed: expected exactly one of --weights, --checkpoint, --init-seed or --pixels");
  base::refuse_overwriting_input("embed", {"--out", config.out}, base::OutputKind::kFile,
                                 {{{"--weights", config.weights}},
                                  {{"--checkpoint", flags.checkpoint}, base::Overlap::kOutInside},
                                  {{"--data", config.data_dir}, base::Overlap::kOutInside},
                                  {{"--images", config.images_dir}, base::Overlap::kOutInside}});
  if (flags.init_seed >= 0) {
    config.random_init = true;
    config.seed = static_cast<uint64_t>(flags.init_seed);
    config.weights_sha256 = "random-init-seed-" + std::to_string(flags.init_seed);
  }
  if (!flags.checkpoint.empty()) {
    train::CheckpointWeights weights = train::load_checkpoint_weights(flags.checkpoint);
    config.state = std::move(weights.student);
    if (config.arch.empty()) config.arch = weights.vit.arch;
    const auto model_file = std::filesystem::path(flags.checkpoint) / "model.safetensors";
    if (std::filesystem::exists(model_file)) config.weights_sha256 = base::sha256_file(model_file.string());
  }
  eval::run_embed(config);
}

}  // namespace

void setup_embed(CLI::App& sub) {
  auto flags = std::make_shared<EmbedFlags>();
  auto& c = flags->config;
  auto* images = sub.add_option("--images", c.images_dir, "Folder of PNG/JPEG images (every file, sorted by name)")
                     ->check(CLI::ExistingDirectory);
  auto* data = sub.add_option("--data", c.data_dir, "Packed dataset folder (manifest.json + shards)")
                   ->check(CLI::ExistingDirectory);
  images->excludes(data);
  sub.add_option("--split", c.split, "Dataset form: which split to embed")
      ->check(CLI::IsMember({"train", "test", "all"}))
      ->capture_default_str();
  sub.add_option("--weights", c.weights, "Encoder weights (.safetensors, or a torch.save .pth state dict)")
      ->check(CLI::ExistingFile);
  sub.add_option("--checkpoint", flags->checkpoint, "A pretrain checkpoint folder: its student encoder is embedded")
      ->check(CLI::ExistingDirectory);
  sub.add_option("--init-seed", flags->init_seed, "No weights: timm-style random init with this seed (needs --arch)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--pixels", c.pixels,
                 "No encoder: the raw-pixel baseline, each image area-averaged to NxN and flattened (3*N*N values)")
      ->check(CLI::Range(1, 64));
  sub.add_option("--arch", c.arch, "Registered architecture (default: inferred from the weights)");
  sub.add_option("--img-size", c.img_size, "Input size S (a multiple of 14); images are resized to SxS when not already")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--pool", flags->pool, "Embedding: mean_all (all tokens, as published), avg (patch tokens), cls")
      ->check(CLI::IsMember({"mean_all", "avg", "cls"}))
      ->capture_default_str();
  sub.add_option("--out", c.out, "The embeddings .h5 file to write (rank 0 writes it)")->required();
  sub.add_option("--batch-size", c.batch_size, "Images per forward pass per rank")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--dtype", flags->dtype, "Stored precision (float16 halves the file)")
      ->check(CLI::IsMember({"float32", "float16"}))
      ->capture_default_str();
  add_threads_option(sub, c.threads);
  sub.add_option("--workers", c.workers, "Dataset form: decode threads per rank (0: hardware threads)")
      ->check(CLI::NonNegativeNumber);
  add_device_option(sub, c.device);
  sub.add_option("--precision", c.precision,
                 "fp32 (IEEE float32 on the GPU too, TF32 off: GPU embeddings match CPU ones) or bf16 "
                 "(autocast on CUDA, the fast path)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  sub.add_option("--energy-dir", c.energy_dir, "Where energy.csv/energy.json go (default: the folder of --out)");
  add_no_energy_flag(sub, flags->no_energy);
  sub.callback([flags] { run_with_flag_names(kEmbedFlags, FieldSource::kFlagsOnly, [&] { run_embed(*flags); }); });
}

}  // namespace gf::launcher
