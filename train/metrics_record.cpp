#include "train/metrics_record.hpp"

#include <nlohmann/json.hpp>

namespace gf::train {

nlohmann::json to_json(const MetricsRecord& r) {
  const StepTimes& t = r.time_s;
  return {{"step", r.step},
          {"epoch", r.epoch},
          {"loss", r.loss},
          {"lr", r.lr},
          {"grad_norm", r.grad_norm},
          {"clip_coef", r.clip_coef},
          {"student_grad_norm", r.student_grad_norm},
          {"token_grad_norm", r.token_grad_norm},
          {"grad_scale", r.grad_scale},
          {"skipped", r.skipped},
          {"images_per_s", r.images_per_s},
          {"time_s", {{"step", t.step}, {"data", t.data}, {"teacher", t.teacher}, {"student", t.student},
                      {"allreduce", t.allreduce}, {"optimizer", t.optimizer}}}};
}

}  // namespace gf::train
