#include "train/run_log.hpp"

#include <filesystem>
#include <iostream>

#include "base/atomic_file.hpp"
#include "base/text.hpp"

namespace gf::train {

RunLog::RunLog(const std::string& run_dir, bool enabled)
    : enabled_(enabled), log_path_(run_dir + "/train.log"), metrics_path_(run_dir + "/metrics.jsonl") {
  if (!enabled_) return;
  log_.open(log_path_, std::ios::app);
  if (!log_) throw std::runtime_error(log_path_ + ": cannot open for writing");
}

void RunLog::event(const std::string& text) {
  if (!enabled_) return;
  detail(text);
  std::cerr << "pretrain: " << text << std::endl;
}

void RunLog::detail(const std::string& text) {
  if (!enabled_) return;
  log_ << base::format_now(base::Zone::kLocal, "%Y-%m-%d %H:%M:%S") << ' ' << text << '\n';
  log_.flush();
}

void RunLog::metrics(const MetricsRecord& record) {
  if (!enabled_) return;
  if (!metrics_.is_open()) {
    metrics_.open(metrics_path_, std::ios::app);
    if (!metrics_) throw std::runtime_error(metrics_path_ + ": cannot open for writing");
  }
  metrics_ << to_json(record).dump() << '\n';
  metrics_.flush();
}

void RunLog::truncate_metrics_after(int64_t step) {
  if (!enabled_ || !std::filesystem::exists(metrics_path_)) return;
  std::string kept;
  for (const MetricsRecord& record : read_metrics(metrics_path_))
    if (record.step <= step) kept += to_json(record).dump() + '\n';
  metrics_.close();
  base::write_file_atomic(metrics_path_, kept);
}

}  // namespace gf::train
