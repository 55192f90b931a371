#pragma once
// One line of RUN_DIR/metrics.jsonl: what an optimizer step did and how long each phase took.
// The Trainer writes it (RunLog::metrics); `status`, `report` and `demo` read it back.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gf::train {

// Seconds of one optimizer step, by phase; each phase includes its device sync.
struct StepTimes {
  double step = 0;  // the whole step
  double data = 0, teacher = 0, student = 0, allreduce = 0, optimizer = 0;
};

struct MetricsRecord {
  int64_t step = 0;   // optimizer steps done, this one included
  int64_t epoch = 0;  // the epoch this step belongs to
  double loss = 0;    // mean over ranks
  double lr = 0;
  double grad_norm = 0;  // before clipping, over every gradient the clip sees
  double clip_coef = 1;  // what the clip multiplied every gradient by
  double student_grad_norm = 0;  // over the optimizer's gradients (encoder, projector), before clipping
  double token_grad_norm = 0;    // S × this step's gradient of the parameters no optimizer holds (the corruption token)
  double grad_scale = 1;         // the loss scaler's S in this step (1 without one)
  bool skipped = false;          // a non-finite gradient: the loss scaler skipped the optimizer step
  double images_per_s = 0;
  StepTimes time_s;
};

nlohmann::json to_json(const MetricsRecord& record);
// One record; errors are base::FieldErrors naming `source` and the field.
MetricsRecord metrics_record_from_json(const nlohmann::json& json, const std::string& source);
// Every record of a metrics.jsonl ([] when the file is absent). A torn last line (a run that
// died mid-write) is dropped; any other bad line is an error naming the file and line.
std::vector<MetricsRecord> read_metrics(const std::string& path);

}  // namespace gf::train
