#include "train/resume_check.hpp"

#include <stdexcept>

#include "train/run_config.hpp"

namespace gf::train {

namespace {
const char* const kBatchField = "data.batch_size";
}

ResumePlan plan_resume(const std::string& checkpoint_path, const TrainingState& stored, const nlohmann::json& identity_now,
                       int64_t global_batch_now, bool allow_batch_change) {
  std::string list;
  bool batch_changed = false;
  for (const auto& difference : identity_differences(stored.identity, identity_now)) {
    if (difference.rfind(std::string(kBatchField) + ":", 0) == 0) {
      batch_changed = true;
      if (allow_batch_change) continue;
    }
    list += (list.empty() ? "" : "; ") + difference;
  }
  if (!list.empty()) {
    std::string hint;
    if (batch_changed && !allow_batch_change)
      hint = " (the global batch is part of the trajectory: resume with the checkpoint's batch on any number of ranks, "
             "or pass --allow-batch-change to continue with another one)";
    throw std::runtime_error(checkpoint_path + ": config differs from the checkpoint's (checkpoint vs now): " + list + hint);
  }
  ResumePlan plan;
  plan.epoch_step = stored.epoch_step;
  if (!batch_changed) return plan;
  plan.epoch_step = stored.samples_seen / global_batch_now;
  plan.note = "global batch changed from " + stored.identity.at(kBatchField).dump() + " to " +
              std::to_string(global_batch_now) + " (--allow-batch-change): epoch " + std::to_string(stored.epoch) +
              " continues at sample " + std::to_string(plan.epoch_step * global_batch_now) + " of the " +
              std::to_string(stored.samples_seen) + " already trained; the trajectory differs from an uninterrupted run";
  return plan;
}

}  // namespace gf::train
