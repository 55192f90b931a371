#pragma once
// Training checkpoints: one folder per checkpoint, run_dir/checkpoints/step-NNNNNNNN/ with
//   model.safetensors      the wrapper's state in published names (student in timm names,
//                          projector.*, ls_projector.gamma, corruption_token)
//   optimizer.safetensors  AdamW moments `exp_avg.<name>` / `exp_avg_sq.<name>`, the
//                          gradients the loss scaler carries `carried_grad.<name>`
//                          (train/grad_scaler.hpp), and the generator states
//                          `rng.<generator>` (uint8)
//   state.json             step, epoch, sampler position, AdamW step count, the loss
//                          scale and its growth count, resolved config, its identity
//                          fields and hash, the dataset's fingerprint, every file with
//                          its size
// written into a `.tmp` folder, every file fsynced, then renamed into place: a folder
// without the suffix whose state.json names every file with its size is complete.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "model/param_groups.hpp"
#include "model/vit.hpp"

namespace gf::train {

struct TrainingState {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // epoch of the next step
  int64_t epoch_step = 0;      // optimizer steps done within `epoch`
  int64_t samples_seen = 0;    // global samples consumed within `epoch` (the sampler position)
  int64_t adam_step = 0;       // AdamW's step count (every parameter shares it)
  double grad_scale = 1;              // the loss scaler's S for the next step
  int64_t grad_scale_growth = 0;      // its finite steps since S last changed
  double last_loss = 0;
  nlohmann::json config = nlohmann::json::object();    // resolved RunConfig
  nlohmann::json identity = nlohmann::json::object();  // identity_fields of it
  std::string config_hash;
  // {"fingerprint": dataset_fingerprint (train/resume_check.hpp), "path": data.path}; empty in
  // checkpoints written before it existed.
  nlohmann::json dataset = nlohmann::json::object();
};

struct Checkpoint {
  TrainingState state;
  model::NamedTensors model;      // wrapper state, published names
  model::NamedTensors optimizer;  // exp_avg.<name>, exp_avg_sq.<name>
  model::NamedTensors carried_grads;  // <name> -> the gradient the loss scaler carries
  model::NamedTensors rng;        // <generator> -> its state bytes (uint8)
};

// Writes run_dir/checkpoints/step-<step>/ atomically and returns its path; then removes the
// oldest complete checkpoints beyond `keep_last`.
std::string save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint, int64_t keep_last);
// Reads a checkpoint folder, checking the files state.json lists (presence and sizes) and
// that the model's weights are finite.
Checkpoint load_checkpoint(const std::string& path);
// Complete checkpoints of run_dir, oldest first.
std::vector<std::string> list_checkpoints(const std::string& run_dir);
// The newest complete checkpoint, "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);
// The newest complete checkpoint whose model weights are all finite, "" when there is none
// (what a run that diverged can go back to).
std::string last_good_checkpoint(const std::string& run_dir);

// What else lies in run_dir/checkpoints, oldest first: `torn` is a step-NNNNNNNN folder that
// was renamed into place complete and has since lost or cut a file; a `.tmp` folder (a write
// cut short) or a stray entry is not torn. `why` is the one line saying what is wrong.
struct IncompleteCheckpoint {
  std::string path;
  std::string why;
  bool torn = false;
};
std::vector<IncompleteCheckpoint> incomplete_checkpoints(const std::string& run_dir);

// `greenfound inspect` of a checkpoint folder, or of a run folder (each complete checkpoint,
// and the folders that are not complete with why): step, epoch, loss, model, config hash.
bool is_checkpoint_or_run_dir(const std::string& path);
void print_checkpoint_summary(const std::string& path, std::ostream& out);

// The student encoder of a checkpoint (what `greenfound export --checkpoint` writes).
struct CheckpointWeights {
  model::VitOptions vit;
  model::NamedTensors student;  // timm names only: no projector, ls_projector or corruption token
  int64_t step = 0;
};
CheckpointWeights load_checkpoint_weights(const std::string& path);

}  // namespace gf::train
