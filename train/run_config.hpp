#pragma once
// The run configuration of `greenfound pretrain`: plain structs whose defaults are the
// published recipe (shared/reference/retfound-green.md beside the checkout), filled from JSON and validated
// in one function, serialized back as the run folder's config.json.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "base/enum_names.hpp"
#include "dist/communicator.hpp"
#include "energy/energy_options.hpp"
#include "model/masked_pixel_objective.hpp"
#include "model/token_reconstruction.hpp"
#include "slurm/job_spec.hpp"

namespace gf::train {

struct ModelConfig {
  std::string arch = "vit_small_patch14_reg4";  // model/arch_registry names
  int64_t img_size = 392;
  std::string init;        // weights file (safetensors or .pth, timm or Meta layout); "" = random init
  uint64_t init_seed = 0;  // random init seed when `init` is ""
};

// What pretrain trains: the published Token Reconstruction from `model.init`, or a masked
// pixel objective (model/masked_pixel_objective.hpp) that trains a teacher from scratch.
enum class ObjectiveKind { kTokenReconstruction, kMaskedPixels };
inline constexpr base::EnumName<ObjectiveKind> kObjectiveKindNames[] = {
    {"token_reconstruction", ObjectiveKind::kTokenReconstruction}, {"masked_pixels", ObjectiveKind::kMaskedPixels}};

struct OptimConfig {
  double lr = 5e-5;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double weight_decay = 1e-4;
  bool decay_tokens = true;       // published: cls/register tokens and pos_embed are decayed
  double clip_grad_norm = 0.1;    // over every gradient of the wrapper, corruption token included
  int64_t epochs = 120;
  int64_t cosine_epochs = 100;    // timm t_initial; epochs beyond it run at min_lr
  int64_t warmup_epochs = 10;
  double warmup_lr = 5e-9;
  double min_lr = 5e-9;
  // The published loop's torch.cuda.amp.GradScaler (train/grad_scaler.hpp): "published" keeps
  // the corruption token's gradient multiplied by S, carried and clipped from step to step;
  // "none" clears it every step and never scales.
  std::string grad_scaler = "published";
  double grad_scaler_init_scale = 65536;     // S at step 0 (GradScaler's default 2^16)
  int64_t grad_scaler_growth_interval = 2000;  // finite steps in a row before S doubles
};

struct DataConfig {
  std::string path;               // packed dataset folder (manifest.json + shards)
  std::string split = "train";
  double fraction = 1.0;          // seeded (data.seed), patient-level subset of the split (data/dataset.hpp)
  int64_t batch_size = 128;       // GLOBAL batch: split over ranks and accumulation steps
  bool drop_last = false;         // published: an epoch's last, smaller batch is a step too
  int64_t workers = 30;           // decode/augment threads per rank
  int64_t prefetch = 2;           // batches ready ahead, per worker
  uint64_t seed = 0;              // shuffling, augmentation and corruption draws
  bool augment = true;            // the published training augmentations
};

enum class Precision {
  kAuto,  // bf16 autocast on CUDA, fp32 on CPU
  kBf16,
  kFp32,
};
inline constexpr base::EnumName<Precision> kPrecisionNames[] = {
    {"auto", Precision::kAuto}, {"bf16", Precision::kBf16}, {"fp32", Precision::kFp32}};

struct TrainLoopConfig {
  int64_t grad_accum = 1;               // micro-batches per optimizer step
  Precision precision = Precision::kAuto;
  int64_t checkpoint_every_steps = 0;   // 0 = off
  int64_t checkpoint_every_epochs = 5;  // 0 = off
  int64_t keep_last = 3;                // checkpoints kept (>= 1)
  int64_t log_every = 10;               // optimizer steps between metrics lines
  int64_t threads = 0;                  // torch intra-op threads per rank; 0 = automatic (base::resolve_threads)
  int64_t max_steps = 0;                // stop (with a checkpoint) after this many steps; 0 = no limit
  std::string device = "auto";          // auto | cpu | cuda
};

struct DistConfig {
  dist::Backend backend = dist::Backend::kAuto;
  double bucket_mb = 25;
  double timeout_s = 600;
};

struct RunConfig {
  std::string description;
  ModelConfig model;
  ObjectiveKind objective_kind = ObjectiveKind::kTokenReconstruction;  // objective.kind
  model::TokenReconstructionOptions objective;                          // objective.* for token_reconstruction
  model::MaskedPixelOptions masked_pixels;                              // objective.mask_ratio for masked_pixels
  OptimConfig optim;
  DataConfig data;
  TrainLoopConfig train;
  DistConfig dist;
  energy::EnergyOptions energy;  // the energy tracker's options and the cost model
  slurm::JobSpecLayer slurm;     // the job settings `greenfound submit` puts over the site file's
};

// Fills a RunConfig from `json` (absent fields keep their defaults) and validates it. Errors
// are base::FieldErrors naming the field, the value found and what was expected; unknown keys
// are errors too. `source` prefixes every message (the config file's path).
RunConfig parse_run_config(const nlohmann::json& json, const std::string& source = "config");
// Every field, as parse_run_config reads it back.
nlohmann::json to_json(const RunConfig& config);

// The fields a checkpoint must agree on to be resumed (model, objective, optimizer
// schedule, global batch, seed), as dotted paths with their values.
nlohmann::json identity_fields(const RunConfig& config);
// sha256 (hex) of identity_fields(config).dump().
std::string config_hash(const RunConfig& config);
// The dotted names of identity fields that differ ("model.img_size: 392 vs 224"), empty when equal.
std::vector<std::string> identity_differences(const nlohmann::json& stored, const nlohmann::json& current);

}  // namespace gf::train
