#include "train/metrics_record.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "base/json_reader.hpp"

namespace gf::train {

namespace {

// Every field, once, as (section, key, field), section "" for the record itself: written and
// read in this order. `R` is MetricsRecord or const MetricsRecord.
template <class R, class F>
void visit_fields(R& r, F&& f) {
  f("", "step", r.step);
  f("", "epoch", r.epoch);
  f("", "loss", r.loss);
  f("", "lr", r.lr);
  f("", "grad_norm", r.grad_norm);
  f("", "clip_coef", r.clip_coef);
  f("", "student_grad_norm", r.student_grad_norm);
  f("", "token_grad_norm", r.token_grad_norm);
  f("", "grad_scale", r.grad_scale);
  f("", "skipped", r.skipped);
  f("", "images_per_s", r.images_per_s);
  f("time_s", "step", r.time_s.step);
  f("time_s", "data", r.time_s.data);
  f("time_s", "teacher", r.time_s.teacher);
  f("time_s", "student", r.time_s.student);
  f("time_s", "allreduce", r.time_s.allreduce);
  f("time_s", "optimizer", r.time_s.optimizer);
}

}  // namespace

nlohmann::json to_json(const MetricsRecord& record) {
  nlohmann::json out = nlohmann::json::object();
  visit_fields(record, [&](const std::string& section, const char* key, const auto& field) {
    (section.empty() ? out : out[section])[key] = field;
  });
  return out;
}

MetricsRecord metrics_record_from_json(const nlohmann::json& json, const std::string& source) {
  MetricsRecord record;
  base::Section top = base::Section::of(json, "", source);
  base::Section time = top.child("time_s");
  visit_fields(record, [&](const std::string& section, const char* key, auto& field) {
    (section.empty() ? top : time).read(key, field);
  });
  time.finish();
  top.finish();
  return record;
}

std::vector<MetricsRecord> read_metrics(const std::string& path) {
  std::vector<MetricsRecord> records;
  if (!std::filesystem::exists(path)) return records;
  const auto lines = base::load_json_lines(path);
  for (size_t i = 0; i < lines.size(); ++i)
    records.push_back(metrics_record_from_json(lines[i], path + ": record " + std::to_string(i + 1)));
  return records;
}

}  // namespace gf::train
