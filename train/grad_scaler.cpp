#include "train/grad_scaler.hpp"

#include <ATen/ATen.h>
#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>

#include <cmath>
#include <map>
#include <stdexcept>

namespace gf::train {

namespace {

constexpr double kGrowthFactor = 2.0;   // GradScaler's defaults
constexpr double kBackoffFactor = 0.5;

// GradScaler keeps S in a float tensor and multiplies in double before storing.
double as_float(double value) { return static_cast<double>(static_cast<float>(value)); }

}  // namespace

GradScalerMode parse_grad_scaler_mode(const std::string& name) {
  if (name == "none") return GradScalerMode::kNone;
  if (name == "published") return GradScalerMode::kPublished;
  throw std::runtime_error("optim.grad_scaler: found \"" + name + "\", expected none or published");
}

GradScaler::GradScaler(const GradScalerOptions& options, std::vector<at::Tensor> held, model::NamedTensors unheld)
    : options_(options), held_(std::move(held)), unheld_(std::move(unheld)), carried_(unheld_.size()) {
  if (options_.mode == GradScalerMode::kPublished) scale_ = as_float(options_.init_scale);
}

GradScaler::Unscaled GradScaler::unscale() {
  at::NoGradGuard no_grad;
  const bool published = options_.mode == GradScalerMode::kPublished;
  Unscaled out;
  std::vector<at::Tensor> norms;
  for (size_t i = 0; i < unheld_.size(); ++i) {
    at::Tensor& grad = unheld_[i].second.mutable_grad();
    if (grad.defined()) {
      if (published) grad.mul_(scale_);  // exact: S is a power of two
      norms.push_back(grad.norm());
      // Autograd accumulates the new gradient onto the kept one; float addition commutes.
      if (published && carried_[i].defined()) grad.add_(carried_[i]);
    } else if (published && carried_[i].defined()) {
      grad = carried_[i];  // no gradient this step: the kept one stands
    }
  }
  const auto options = held_.empty() ? at::TensorOptions(at::kFloat) : held_.front().options().dtype(at::kFloat);
  out.unheld_norm = norms.empty() ? at::zeros({}, options) : at::linalg_vector_norm(at::stack(norms), 2);
  if (!published) return out;

  std::vector<at::Tensor> grads;
  for (const auto& parameter : held_)
    if (parameter.grad().defined()) grads.push_back(parameter.grad());
  if (grads.empty()) return out;
  // The kernel GradScaler.unscale_ runs, with 1/S = 1: it only checks (see the header).
  at::Tensor found_inf = at::zeros({1}, grads.front().options().dtype(at::kFloat));
  const at::Tensor one = at::ones({1}, found_inf.options());
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, one);
  out.finite = found_inf.item<float>() == 0.0f;
  return out;
}

void GradScaler::update(bool finite) {
  if (options_.mode != GradScalerMode::kPublished) return;
  for (size_t i = 0; i < unheld_.size(); ++i) carried_[i] = unheld_[i].second.grad();  // as the clip left it
  // torch's _amp_update_scale_: the scale never grows to inf.
  if (!finite) {
    scale_ = as_float(scale_ * kBackoffFactor);
    growth_tracker_ = 0;
  } else if (growth_tracker_ + 1 == options_.growth_interval) {
    const double grown = as_float(scale_ * kGrowthFactor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  } else {
    growth_tracker_ += 1;
  }
}

GradScalerState GradScaler::state() const {
  GradScalerState out;
  out.scale = scale_;
  out.growth_tracker = growth_tracker_;
  for (size_t i = 0; i < unheld_.size(); ++i)
    if (carried_[i].defined()) out.carried.emplace_back(unheld_[i].first, carried_[i].to(at::kCPU).clone());
  return out;
}

void GradScaler::load_state(const GradScalerState& state, const std::string& source) {
  if (!std::isfinite(state.scale) || state.scale <= 0 || as_float(state.scale) != state.scale)
    throw std::runtime_error(source + ": grad_scaler.scale: found " + std::to_string(state.scale) +
                             ", expected a positive float");
  if (state.growth_tracker < 0 || (options_.mode == GradScalerMode::kPublished && state.growth_tracker >= options_.growth_interval))
    throw std::runtime_error(source + ": grad_scaler.growth_tracker: found " + std::to_string(state.growth_tracker) +
                             ", expected 0.." + std::to_string(options_.growth_interval - 1));
  std::map<std::string, at::Tensor> given(state.carried.begin(), state.carried.end());
  for (size_t i = 0; i < unheld_.size(); ++i) {
    const auto& [name, parameter] = unheld_[i];
    auto it = given.find(name);
    carried_[i] = at::Tensor();
    if (it == given.end()) continue;  // no gradient yet when the checkpoint was written
    if (it->second.sizes() != parameter.sizes())
      throw std::runtime_error(source + ": carried gradient of " + name + ": found shape " + c10::str(it->second.sizes()) +
                               ", expected " + c10::str(parameter.sizes()));
    carried_[i] = it->second.to(parameter.options().requires_grad(false)).clone();
    given.erase(it);
  }
  if (!given.empty())
    throw std::runtime_error(source + ": carried gradient of " + given.begin()->first +
                             ": no such parameter outside the optimizer");
  scale_ = state.scale;
  growth_tracker_ = state.growth_tracker;
}

}  // namespace gf::train
