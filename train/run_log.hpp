#pragma once
// The run folder's logs, written by rank 0 only: train.log (timestamped lines) and
// metrics.jsonl (one JSON object per optimizer step).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include "train/metrics_record.hpp"

namespace gf::train {

class RunLog {
 public:
  // Inactive (writes nothing) when `enabled` is false: the ranks other than 0.
  RunLog(const std::string& run_dir, bool enabled);

  void event(const std::string& text);        // train.log and stderr (start, checkpoints, end)
  void detail(const std::string& text);       // train.log only (the periodic step lines)
  void metrics(const MetricsRecord& record);  // metrics.jsonl
  // On resume: drops metrics.jsonl records of steps after `step` (they are trained again).
  void truncate_metrics_after(int64_t step);

 private:
  bool enabled_;
  std::string log_path_, metrics_path_;
  std::ofstream log_, metrics_;
};

}  // namespace gf::train
