#include "model/lr_schedule.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace gf::model {

CosineSchedule::CosineSchedule(CosineScheduleOptions options) : options_(options) {
  if (options_.t_initial <= 0)
    throw std::runtime_error("lr schedule: t_initial: found " + std::to_string(options_.t_initial) + ", expected > 0");
  if (options_.warmup_t < 0)
    throw std::runtime_error("lr schedule: warmup_t: found " + std::to_string(options_.warmup_t) + ", expected >= 0");
}

double CosineSchedule::lr(int64_t epoch) const {
  const auto& o = options_;
  // Same operations, in the same order, as timm's CosineLRScheduler._get_lr, so the doubles
  // agree to the last bit or two.
  if (epoch < o.warmup_t) {
    const double warmup_step = (o.base_lr - o.warmup_lr_init) / static_cast<double>(o.warmup_t);
    return o.warmup_lr_init + static_cast<double>(epoch) * warmup_step;
  }
  const int64_t t = o.warmup_prefix ? epoch - o.warmup_t : epoch;
  const int64_t cycle = t / o.t_initial;
  const int64_t t_curr = t - o.t_initial * cycle;
  if (cycle >= o.cycle_limit) return o.lr_min;
  const double pi = std::acos(-1.0);
  return o.lr_min + 0.5 * (o.base_lr - o.lr_min) *
                        (1.0 + std::cos(pi * static_cast<double>(t_curr) / static_cast<double>(o.t_initial)));
}

}  // namespace gf::model
