#include "base/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace gf::base {
namespace {

constexpr double kBarRedrawSeconds = 0.2;
constexpr int kBarWidth = 30;

bool stream_is_terminal(const std::ostream& out) {
  if (&out == &std::cerr || &out == &std::clog) return ::isatty(STDERR_FILENO) == 1;
  if (&out == &std::cout) return ::isatty(STDOUT_FILENO) == 1;
  return false;
}

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const auto total = static_cast<int64_t>(seconds + 0.5);
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  std::ostringstream out;
  if (h > 0) {
    out << h << "h" << std::setw(2) << std::setfill('0') << m << "m";
  } else if (m > 0) {
    out << m << "m" << std::setw(2) << std::setfill('0') << s << "s";
  } else {
    out << s << "s";
  }
  return out.str();
}

Progress::Progress(ProgressOptions options, int64_t total) : Progress(std::move(options), total, std::cerr) {}

Progress::Progress(ProgressOptions options, int64_t total, std::ostream& out)
    : options_(std::move(options)), total_(total), out_(out) {
  switch (options_.style) {
    case ProgressStyle::kAuto: bar_ = stream_is_terminal(out_); break;
    case ProgressStyle::kBar: bar_ = true; break;
    default: bar_ = false; break;
  }
  start_ = last_render_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  if (finished_ || options_.style == ProgressStyle::kSilent) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = seconds_between(last_render_, now);
  if (since >= (bar_ ? kBarRedrawSeconds : options_.interval_seconds)) {
    last_render_ = now;
    render(false);
  }
}

void Progress::set_note(const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  note_ = note;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (options_.style != ProgressStyle::kSilent) render(true);
}

void Progress::render(bool final_line) {
  const double elapsed = seconds_between(start_, std::chrono::steady_clock::now());
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  std::ostringstream line;
  line << std::fixed << std::setprecision(1);
  if (bar_) {
    const double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 0.0;
    const int filled = static_cast<int>(fraction * kBarWidth);
    line << "\r" << options_.label << " [" << std::string(filled, '#') << std::string(kBarWidth - filled, '.') << "] "
         << done_ << "/" << total_ << "  " << rate << " " << options_.unit << "/s";
  } else {
    line << options_.label << ": " << done_ << "/" << total_ << " " << options_.unit;
    if (total_ > 0) line << " (" << 100.0 * static_cast<double>(done_) / static_cast<double>(total_) << "%)";
    line << ", " << rate << " " << options_.unit << "/s";
  }
  if (final_line) {
    line << (bar_ ? "  " : ", ") << "done in " << format_duration(elapsed);
  } else if (rate > 0 && total_ > done_) {
    line << (bar_ ? "  ETA " : ", ETA ") << format_duration(static_cast<double>(total_ - done_) / rate);
  }
  if (!note_.empty()) line << (bar_ ? "  " : ", ") << note_;
  if (bar_) {
    line << "\x1b[K";  // clear what a longer previous line left
    if (final_line) line << "\n";
  } else {
    line << "\n";
  }
  out_ << line.str() << std::flush;
}

}  // namespace gf::base
