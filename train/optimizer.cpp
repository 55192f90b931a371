#include "train/optimizer.hpp"

#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/linalg_vector_norm.h>

#include <map>
#include <sstream>
#include <stdexcept>
#include <type_traits>

namespace gf::train {

namespace {

std::vector<torch::Tensor> tensors_of(const model::NamedTensors& named) {
  std::vector<torch::Tensor> out;
  for (const auto& item : named) out.push_back(item.second);
  return out;
}

// The key LibTorch's optimizers file a parameter's state under: a string of the TensorImpl
// address in 1.x, the address itself in 2.x.
template <typename Key>
Key state_key(const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

}  // namespace

Optimizer::Optimizer(const model::NamedTensors& optimized, const OptimConfig& config) {
  const model::ParamGroups groups = model::split_weight_decay(
      optimized, config.decay_tokens ? model::TokenDecay::kDecay : model::TokenDecay::kExclude);
  auto options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(config.lr)
                                                            .betas({config.beta1, config.beta2})
                                                            .eps(config.eps)
                                                            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  param_groups.emplace_back(tensors_of(groups.decay), options(config.weight_decay));
  param_groups.emplace_back(tensors_of(groups.no_decay), options(0.0));
  adamw_ = std::make_unique<torch::optim::AdamW>(std::move(param_groups), torch::optim::AdamWOptions(config.lr));
  all_ = groups.decay;
  all_.insert(all_.end(), groups.no_decay.begin(), groups.no_decay.end());
}

void Optimizer::set_lr(double lr) {
  for (auto& group : adamw_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

model::NamedTensors Optimizer::state() const {
  using Key = typename std::decay_t<decltype(adamw_->state())>::key_type;
  model::NamedTensors out;
  for (const auto& [name, parameter] : all_) {
    auto it = adamw_->state().find(state_key<Key>(parameter));
    if (it == adamw_->state().end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("exp_avg." + name, s.exp_avg().to(torch::kCPU).clone());
    out.emplace_back("exp_avg_sq." + name, s.exp_avg_sq().to(torch::kCPU).clone());
  }
  return out;
}

int64_t Optimizer::step_count() const {
  using Key = typename std::decay_t<decltype(adamw_->state())>::key_type;
  for (const auto& item : all_) {
    auto it = adamw_->state().find(state_key<Key>(item.second));
    if (it != adamw_->state().end()) return static_cast<const torch::optim::AdamWParamState&>(*it->second).step();
  }
  return 0;
}

void Optimizer::load_state(const model::NamedTensors& state, int64_t step_count, const std::string& source) {
  using Key = typename std::decay_t<decltype(adamw_->state())>::key_type;
  adamw_->state().clear();
  if (step_count == 0) return;
  std::map<std::string, torch::Tensor> given(state.begin(), state.end());
  for (const auto& [name, parameter] : all_) {
    auto avg = given.find("exp_avg." + name);
    auto avg_sq = given.find("exp_avg_sq." + name);
    if (avg == given.end() || avg_sq == given.end())
      throw std::runtime_error(source + ": optimizer state of " + name + ": missing, expected exp_avg and exp_avg_sq");
    if (avg->second.sizes() != parameter.sizes() || avg_sq->second.sizes() != parameter.sizes())
      throw std::runtime_error(source + ": optimizer state of " + name + ": found shape " +
                               c10::str(avg->second.sizes()) + ", expected " + c10::str(parameter.sizes()));
    auto param_state = std::make_unique<torch::optim::AdamWParamState>();
    param_state->step(step_count);
    param_state->exp_avg(avg->second.to(parameter.options()).clone());
    param_state->exp_avg_sq(avg_sq->second.to(parameter.options()).clone());
    adamw_->state()[state_key<Key>(parameter)] = std::move(param_state);
  }
}

ClipResult clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& parameter : parameters)
    if (parameter.grad().defined()) grads.push_back(parameter.grad());
  ClipResult out;
  if (grads.empty()) {
    out.total_norm = torch::zeros({});
    out.coefficient = torch::ones({});
    out.norms = torch::zeros({static_cast<int64_t>(parameters.size())});
    return out;
  }
  const std::vector<torch::Tensor> defined_norms = at::_foreach_norm(grads, 2);
  std::vector<torch::Tensor> norms;
  size_t next = 0;
  for (const auto& parameter : parameters)
    norms.push_back(parameter.grad().defined() ? defined_norms[next++] : torch::zeros({}, grads.front().options()));
  out.norms = torch::stack(norms);
  out.total_norm = at::linalg_vector_norm(torch::stack(defined_norms), 2);
  out.coefficient = torch::clamp_max((out.total_norm + 1e-6).reciprocal() * max_norm, 1.0);
  at::_foreach_mul_(grads, out.coefficient);
  return out;
}

}  // namespace gf::train
