#pragma once
// May a checkpoint be resumed with the config of now, and from which step of its epoch?
//
// Resuming is elastic in the world: any number of hosts and ranks that split the same global
// batch continue the same trajectory, because the sampler cuts the epoch's permutation into
// global batches and every augmentation and corruption draw is keyed by the global sample
// index (data/loader.hpp, model/token_reconstruction.hpp), never by rank. The global batch
// itself is part of the trajectory (which samples share a step, steps per epoch): a different
// one is refused unless asked for, and then the epoch continues at step
// floor(samples trained in the epoch / new batch): at most one new batch is trained twice.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "train/checkpoint.hpp"

namespace gf::train {

struct ResumePlan {
  int64_t epoch_step = 0;  // optimizer steps of the new global batch already done in the epoch
  std::string note;        // for the log when the global batch changed, else ""
};

// Throws naming `checkpoint_path` and every identity field that differs (checkpoint vs now);
// data.batch_size may differ only with allow_batch_change.
ResumePlan plan_resume(const std::string& checkpoint_path, const TrainingState& stored, const nlohmann::json& identity_now,
                       int64_t global_batch_now, bool allow_batch_change);

}  // namespace gf::train
