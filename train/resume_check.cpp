#include "train/resume_check.hpp"

#include <stdexcept>

#include "base/sha256.hpp"
#include "data/dataset.hpp"
#include "train/run_config.hpp"

namespace gf::train {

namespace {
const char* const kBatchField = "data.batch_size";

// The field `key` of a {"fingerprint", "path"} object, "" when absent (checkpoints before fingerprints).
std::string part(const nlohmann::json& dataset, const char* key) {
  return dataset.is_object() && dataset.contains(key) && dataset.at(key).is_string() ? dataset.at(key).get<std::string>() : "";
}

std::string short_hash(const nlohmann::json& dataset) {
  return part(dataset, "fingerprint").substr(0, 12) + ".. (" + part(dataset, "path") + ")";
}

// "" when the data may be resumed on, else why not; `note` gets what the log should say.
std::string dataset_difference(const TrainingState& stored, const ResumeRequest& now, std::string& note) {
  const std::string before = part(stored.dataset, "fingerprint"), after = part(now.dataset, "fingerprint");
  if (before.empty()) {
    note = "the checkpoint names no dataset fingerprint (written before they existed): its data is not compared";
    return "";
  }
  if (before == after) return "";
  if (now.allow_dataset_change) {
    note = "dataset changed from " + short_hash(stored.dataset) + " to " + short_hash(now.dataset) +
           " (--allow-dataset-change): the trajectory differs from an uninterrupted run";
    return "";
  }
  return "dataset fingerprint: found " + short_hash(now.dataset) + ", expected the checkpoint's " +
         short_hash(stored.dataset) +
         " (the same images packed the same way; pass --allow-dataset-change to continue on other data)";
}
}  // namespace

ResumePlan plan_resume(const std::string& checkpoint_path, const TrainingState& stored, const ResumeRequest& now) {
  std::string list;
  bool batch_changed = false;
  for (const auto& difference : identity_differences(stored.identity, now.identity)) {
    if (difference.rfind(std::string(kBatchField) + ":", 0) == 0) {
      batch_changed = true;
      if (now.allow_batch_change) continue;
    }
    list += (list.empty() ? "" : "; ") + difference;
  }
  if (!list.empty()) {
    std::string hint;
    if (batch_changed && !now.allow_batch_change)
      hint = " (the global batch is part of the trajectory: resume with the checkpoint's batch on any number of ranks, "
             "or pass --allow-batch-change to continue with another one)";
    throw std::runtime_error(checkpoint_path + ": config differs from the checkpoint's (checkpoint vs now): " + list + hint);
  }
  ResumePlan plan;
  const std::string data_refusal = dataset_difference(stored, now, plan.note);
  if (!data_refusal.empty()) throw std::runtime_error(checkpoint_path + ": " + data_refusal);
  plan.epoch_step = stored.epoch_step;
  if (!batch_changed) return plan;
  plan.epoch_step = stored.samples_seen / now.global_batch;
  plan.note = (plan.note.empty() ? "" : plan.note + "; ") + "global batch changed from " +
              stored.identity.at(kBatchField).dump() + " to " + std::to_string(now.global_batch) +
              " (--allow-batch-change): epoch " + std::to_string(stored.epoch) + " continues at sample " +
              std::to_string(plan.epoch_step * now.global_batch) + " of the " + std::to_string(stored.samples_seen) +
              " already trained; the trajectory differs from an uninterrupted run";
  return plan;
}

std::string dataset_fingerprint(const std::string& dataset_dir) {
  const data::Manifest m = data::read_manifest(dataset_dir);
  nlohmann::json content = {{"count", m.count},
                            {"resolution", m.resolution},
                            {"encoding", data::to_string(m.encoding)},
                            {"split", {m.split.by, m.split.test_fraction, m.split.seed, m.split.train_count, m.split.test_count}}};
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& shard : m.shards) shards.push_back(shard.sha256);
  content["shards"] = shards;
  return base::sha256_hex(content.dump());
}

}  // namespace gf::train
