#pragma once
// The loss scaler of the published loop (retfound-green.md §1) and what it did to a wrapper
// parameter no optimizer holds (the corruption token). The notebook ran, every step,
//   optim.zero_grad()                       clears the optimizer's gradients only
//   scaler.scale(loss).backward()           every gradient is S·g; the token's is added to the
//                                           one it kept from the step before
//   scaler.unscale_(optim)                  the optimizer's gradients become g; a non-finite one
//                                           marks the step
//   clip_grad_norm_(wrapper.parameters())   the total norm includes the token's S-scaled, carried
//                                           gradient, which the clip shrinks in place
//   scaler.step(optim); scaler.update()     a marked step is skipped and halves S (count reset);
//                                           otherwise S doubles after growth_interval finite
//                                           steps in a row
// with torch.cuda.amp.GradScaler's defaults: S = 2^16 at start, growth 2, backoff 0.5,
// growth_interval 2000.
//
// The loss itself is never multiplied by S here, and the optimizer's gradients are left as
// they are: S is a power of two, so S·g and (S·g)/S are exact in IEEE float (fp32 on CPU, bf16
// under autocast alike) unless a value overflows or falls below the normal range, and the
// backward pass is linear in the loss's gradient, so scale-then-unscale is the identity on
// those gradients, with no rounding to emulate. What is reproduced is the part that is not an
// identity: the token's gradient times S, added to the carried one after the all-reduce,
// clipped with the rest and kept for the next step; the non-finite check on the optimizer's
// gradients; and S's growth and backoff (kept in float, as GradScaler keeps it). The peer test
// (tests/train/test_published_loop) runs the real scaled backward and torch.amp.GradScaler.
// A non-finite loss still stops the run before any of this (DESIGN.md's rule); the published
// loop would have skipped that step like any other non-finite one.
//
//   GradScaler scaler(options, optimizer_parameters, other_parameters);
//   every step, after the all-reduce:
//     const auto unscaled = scaler.unscale();
//     clip_grad_norm(all_parameters, max_norm);
//     if (unscaled.finite) optimizer.step();
//     scaler.update(unscaled.finite);
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/param_groups.hpp"

namespace gf::train {

enum class GradScalerMode {
  kNone,       // no scale: every gradient as backward gave it, the token's cleared each step
  kPublished,  // the published loop's GradScaler, as above
};
// "none" | "published"; anything else throws naming optim.grad_scaler.
GradScalerMode parse_grad_scaler_mode(const std::string& name);

struct GradScalerOptions {
  GradScalerMode mode = GradScalerMode::kPublished;
  double init_scale = 65536.0;    // 2^16, GradScaler's default
  int64_t growth_interval = 2000;
};

// What a checkpoint keeps to continue bitwise.
struct GradScalerState {
  double scale = 1;             // S of the next step (a float value)
  int64_t growth_tracker = 0;   // finite steps since S last changed
  model::NamedTensors carried;  // each unheld parameter's gradient after the last clip (CPU)
};

class GradScaler {
 public:
  // `held`: the optimizer's parameters; `unheld`: the wrapper's other trainable parameters by
  // their published names (the corruption token, unless objective.train_corruption_token).
  GradScaler(const GradScalerOptions& options, std::vector<at::Tensor> held, model::NamedTensors unheld);

  struct Unscaled {
    bool finite = true;         // every gradient of the optimizer is finite (always so in kNone)
    at::Tensor unheld_norm;  // 0-dim: S × the L2 norm of this step's unheld gradients
  };
  // After the all-reduce, before the clip. kPublished: each unheld gradient becomes
  // carried + S × g, and the optimizer's gradients are checked as unscale_ checks them.
  Unscaled unscale();
  // After the clip and the optimizer's step (skipped by the caller when !finite): keeps the
  // clipped unheld gradients for the next step, then grows or backs off S.
  void update(bool finite);

  double scale() const { return scale_; }  // S of the step in progress; 1 in kNone
  GradScalerMode mode() const { return options_.mode; }

  GradScalerState state() const;
  // Restores what state() returned; `source` names the checkpoint in errors.
  void load_state(const GradScalerState& state, const std::string& source);

 private:
  GradScalerOptions options_;
  std::vector<at::Tensor> held_;
  model::NamedTensors unheld_;
  std::vector<at::Tensor> carried_;  // per unheld parameter; undefined before its first gradient
  double scale_ = 1;
  int64_t growth_tracker_ = 0;
};

}  // namespace gf::train
