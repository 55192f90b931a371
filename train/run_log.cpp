#include "train/run_log.hpp"

#include <chrono>
#include <ctime>
#include <iostream>
#include <sstream>

#include "data/atomic_file.hpp"

namespace gf::train {

namespace {

std::string timestamp() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

}  // namespace

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
  log_ << timestamp() << ' ' << text << '\n';
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
  if (!enabled_) return;
  std::ifstream in(metrics_path_);
  if (!in) return;
  std::ostringstream kept;
  for (std::string text; std::getline(in, text);) {
    if (text.empty()) continue;
    // A torn last line (the run died mid-write) is dropped with the steps after the checkpoint.
    const auto record = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.value("step", int64_t{0}) <= step) kept << text << '\n';
  }
  in.close();
  metrics_.close();
  data::write_file_atomic(metrics_path_, kept.str());
}

}  // namespace gf::train
