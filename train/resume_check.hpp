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
//
// The data is part of it too: a checkpoint stores its dataset's fingerprint, and a resume on
// data with another fingerprint is refused unless asked for (the folder may move: the path is
// not compared).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "train/checkpoint.hpp"

namespace gf::train {

struct ResumePlan {
  int64_t epoch_step = 0;  // optimizer steps of the new global batch already done in the epoch
  std::string note;        // for the log when the global batch or dataset changed, else ""
};

// The run of now, as plan_resume compares it with a checkpoint.
struct ResumeRequest {
  nlohmann::json identity;          // identity_fields of the config of now
  int64_t global_batch = 0;
  nlohmann::json dataset;           // {"fingerprint", "path"} of the data of now
  bool allow_batch_change = false;  // --allow-batch-change
  bool allow_dataset_change = false;  // --allow-dataset-change
};

// Throws naming `checkpoint_path` and every identity field that differs (checkpoint vs now);
// data.batch_size may differ only with allow_batch_change, the dataset only with
// allow_dataset_change. A checkpoint from before fingerprints resumes with a note.
ResumePlan plan_resume(const std::string& checkpoint_path, const TrainingState& stored, const ResumeRequest& now);

// The identity of a packed dataset's content as training sees it: image count, resolution,
// encoding, every shard's sha256 in order and the split. The same images packed the same way
// into another folder have the same fingerprint; labels and the manifest's other fields do not
// enter it. Throws as data::read_manifest does.
std::string dataset_fingerprint(const std::string& dataset_dir);

}  // namespace gf::train
