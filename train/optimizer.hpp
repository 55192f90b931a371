#pragma once
// The published optimizer: AdamW over the weight-decay groups of model/param_groups.hpp,
// the per-epoch learning rate set on every group, gradient-norm clipping over every
// gradient of the wrapper, and the AdamW state by parameter name (for checkpoints).
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/param_groups.hpp"
#include "train/run_config.hpp"

namespace gf::train {

class Optimizer {
 public:
  // Group 0 decays (optim.weight_decay), group 1 does not; the groups come from
  // `optimized` with the published token rule unless optim.decay_tokens is false.
  Optimizer(const model::NamedTensors& optimized, const OptimConfig& config);

  void set_lr(double lr) { lr_ = lr; }
  // One AdamW step (torch.optim.AdamW's algorithm) of every parameter that has a gradient;
  // the others are skipped and keep their state, as PyTorch's optimizers do.
  void step();

  // exp_avg.<name> and exp_avg_sq.<name> of every parameter with state (CPU copies), and
  // AdamW's step count (shared by all parameters: they are all stepped every time).
  model::NamedTensors state() const;
  int64_t step_count() const;
  // Restores what state() returned; a parameter missing from `state` is an error.
  void load_state(const model::NamedTensors& state, int64_t step_count, const std::string& source);

 private:
  struct Slot {
    std::string name;
    at::Tensor param;
    bool decay = false;
    int64_t steps = 0;
    at::Tensor exp_avg, exp_avg_sq, step;  // undefined until the first step (step: float32 scalar)
  };
  std::vector<Slot> slots_;  // decay group then no-decay
  OptimConfig config_;
  double lr_;
};

// What a clip saw, on the gradients' device (no sync).
struct ClipResult {
  at::Tensor total_norm;   // 0-dim: L2 norm over every gradient, before clipping
  at::Tensor coefficient;  // 0-dim: min(1, max_norm / (total_norm + 1e-6)), applied to every gradient
  at::Tensor norms;        // [parameters.size()]: each gradient's L2 norm before clipping (0 without one)
};

// torch.nn.utils.clip_grad_norm_(parameters, max_norm) as PyTorch 2 computes it: per-gradient
// norms (_foreach_norm), the norm of those, the coefficient as 1/(total + 1e-6) x max_norm
// clamped to 1, every defined gradient multiplied by it (_foreach_mul_).
ClipResult clip_grad_norm(const std::vector<at::Tensor>& parameters, double max_norm);

}  // namespace gf::train
