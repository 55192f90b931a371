#pragma once
// Progress of long work (pack, pretrain, embed): on a terminal a redrawn bar with the rate
// and ETA; otherwise (logs, SLURM output) one plain line every `interval_seconds`, and one at
// the end. Thread-safe: any thread may call advance().
//
//   tty:   pack [#########.............]  1024/75000  312.5 images/s  ETA 3m58s
//   plain: pack: 1024/75000 images (1.4%), 312.5 images/s, ETA 3m58s
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>

namespace gf::base {

enum class ProgressStyle {
  kAuto,   // bar when the stream is stderr/stdout and a terminal, else plain lines
  kBar,
  kPlain,
  kSilent,
};

struct ProgressOptions {
  std::string label;              // "pack", "pretrain epoch 3", ...
  std::string unit = "images";
  ProgressStyle style = ProgressStyle::kAuto;
  double interval_seconds = 10;   // plain lines; the bar redraws at most every 0.2 s
};

class Progress {
 public:
  // `out` defaults to std::cerr.
  Progress(ProgressOptions options, int64_t total);
  Progress(ProgressOptions options, int64_t total, std::ostream& out);
  ~Progress();  // finish() if not called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);
  // A free-text suffix shown after the rate (e.g. "loss 0.0123"); kept until replaced.
  void set_note(const std::string& note);
  // Prints the final line (count, elapsed, mean rate) once.
  void finish();

 private:
  void render(bool final_line);  // caller holds mutex_

  ProgressOptions options_;
  int64_t total_;
  std::ostream& out_;
  bool bar_ = false;
  bool finished_ = false;
  int64_t done_ = 0;
  std::string note_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_render_;
  mutable std::mutex mutex_;
};

// "3m58s", "1h02m", "12s".
std::string format_duration(double seconds);

}  // namespace gf::base
