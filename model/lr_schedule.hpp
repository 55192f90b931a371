#pragma once
// The learning-rate schedule of the published run: timm's CosineLRScheduler with cycle_mul 1,
// cycle_decay 1, k_decay 1, stepped once per epoch (lr of epoch t = schedule.lr(t)).

#include <cstdint>

namespace gf::model {

struct CosineScheduleOptions {
  double base_lr = 5e-5;
  int64_t t_initial = 100;        // length of the cosine cycle, epochs
  int64_t warmup_t = 10;          // linear warmup epochs
  double warmup_lr_init = 5e-9;
  double lr_min = 5e-9;
  bool warmup_prefix = false;     // false: the cosine is not shifted by the warmup (published)
  int64_t cycle_limit = 1;        // after this many cycles the lr stays at lr_min
};

class CosineSchedule {
 public:
  explicit CosineSchedule(CosineScheduleOptions options);
  // The lr every parameter group uses during epoch `epoch` (timm's _get_lr(epoch)).
  double lr(int64_t epoch) const;
  const CosineScheduleOptions& options() const { return options_; }

 private:
  CosineScheduleOptions options_;
};

}  // namespace gf::model
