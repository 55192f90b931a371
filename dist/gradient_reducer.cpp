#include "dist/gradient_reducer.hpp"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

namespace gf::dist {
namespace {

std::string param_name(size_t index) { return "parameter " + std::to_string(index); }

}  // namespace

GradientReducer::GradientReducer(Communicator& communicator, std::vector<at::Tensor> parameters,
                                 GradientReducerOptions options)
    : comm_(communicator), parameters_(std::move(parameters)) {
  if (options.bucket_bytes <= 0) {
    throw std::runtime_error("dist.bucket_mb: found " + std::to_string(options.bucket_bytes) +
                             " bytes, expected a positive bucket size");
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const at::Tensor& p = parameters_[i];
    if (!p.defined() || !p.requires_grad() || !p.is_leaf()) {
      throw std::runtime_error("dist/gradient_reducer: " + param_name(i) +
                               ": found a tensor that is not a leaf requiring grad, expected a model parameter");
    }
  }
  if (comm_.size() == 1) return;  // one rank: backward alone gives the gradients
  build_buckets(options.bucket_bytes);
  broadcast_parameters();
  arrived_.assign(parameters_.size(), 0);
  reset_step();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    hook_ids_.push_back(static_cast<int>(parameters_[i].register_hook([this, i](const at::Tensor& grad) { on_gradient(i, grad); })));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < hook_ids_.size(); ++i) parameters_[i].remove_hook(static_cast<unsigned>(hook_ids_[i]));
}

void GradientReducer::build_buckets(int64_t bucket_bytes) {
  bucket_of_.assign(parameters_.size(), 0);
  slot_of_.assign(parameters_.size(), 0);
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = 0;
  // Reverse order: backward produces the last layers' gradients first.
  for (size_t k = parameters_.size(); k-- > 0;) {
    const at::Tensor& p = parameters_[k];
    const int64_t p_bytes = p.numel() * static_cast<int64_t>(p.element_size());
    bool fits = !groups.empty() && bytes + p_bytes <= bucket_bytes;
    if (fits) {
      const at::Tensor& first = parameters_[groups.back().front()];
      fits = first.scalar_type() == p.scalar_type() && first.device() == p.device();
    }
    if (!fits) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += p_bytes;
  }
  for (auto& group : groups) {
    Bucket bucket;
    bucket.params = group;
    for (size_t slot = 0; slot < group.size(); ++slot) {
      bucket_of_[group[slot]] = buckets_.size();
      slot_of_[group[slot]] = slot;
      bucket.offsets.push_back(bucket.grad_numel);
      bucket.grad_numel += parameters_[group[slot]].numel();
    }
    const at::Tensor& first = parameters_[group.front()];
    // One count per parameter after the gradients: how many ranks had a gradient for it.
    bucket.flat = at::zeros({bucket.grad_numel + static_cast<int64_t>(group.size())}, first.options().requires_grad(false));
    buckets_.push_back(std::move(bucket));
  }
  stats_.buckets = static_cast<int>(buckets_.size());
}

void GradientReducer::broadcast_parameters() {
  at::NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    at::Tensor values = bucket.flat.narrow(0, 0, bucket.grad_numel);
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) {
      const at::Tensor& p = parameters_[bucket.params[slot]];
      values.narrow(0, bucket.offsets[slot], p.numel()).view(p.sizes()).copy_(p);
    }
    comm_.broadcast(values, 0);
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) {
      const at::Tensor& p = parameters_[bucket.params[slot]];
      p.copy_(values.narrow(0, bucket.offsets[slot], p.numel()).view(p.sizes()));
    }
  }
}

void GradientReducer::on_gradient(size_t index, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!sync_) return;
  if (arrived_[index]) {
    throw std::runtime_error("dist/gradient_reducer: " + param_name(index) +
                             " got a second gradient before finalize(); call finalize() after each synced "
                             "backward and run accumulation micro-steps inside no_sync()");
  }
  Bucket& bucket = buckets_[bucket_of_[index]];
  const size_t slot = slot_of_[index];
  const at::Tensor& p = parameters_[index];
  at::NoGradGuard no_grad;
  at::Tensor view = bucket.flat.narrow(0, bucket.offsets[slot], p.numel()).view(p.sizes());
  // The hook runs before AccumulateGrad: the gradient of the step is what earlier
  // (no_sync) micro-steps accumulated plus this one.
  const at::Tensor& accumulated = p.grad();
  if (accumulated.defined()) {
    at::add_out(view, accumulated, grad);
  } else {
    view.copy_(grad);
  }
  bucket.flat[bucket.grad_numel + static_cast<int64_t>(slot)].fill_(1);
  arrived_[index] = 1;
  if (--bucket.pending == 0) {
    const size_t before = next_launch_;
    launch_ready_buckets();
    launched_in_hooks_ += static_cast<int>(next_launch_ - before);
  }
}

void GradientReducer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& bucket = buckets_[next_launch_++];
    bucket.work = comm_.all_reduce_async(bucket.flat, ReduceOp::kSum);
  }
}

void GradientReducer::finalize() {
  if (comm_.size() == 1) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!sync_) throw std::runtime_error("dist/gradient_reducer: finalize() called inside no_sync(), expected after a synced backward");
  at::NoGradGuard no_grad;
  // Parameters that got no gradient this step contribute what they accumulated, or zeros.
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (arrived_[i]) continue;
    Bucket& bucket = buckets_[bucket_of_[i]];
    const size_t slot = slot_of_[i];
    const at::Tensor& p = parameters_[i];
    at::Tensor view = bucket.flat.narrow(0, bucket.offsets[slot], p.numel()).view(p.sizes());
    if (p.grad().defined()) {
      view.copy_(p.grad());
      bucket.flat[bucket.grad_numel + static_cast<int64_t>(slot)].fill_(1);
    } else {
      view.zero_();
    }
    arrived_[i] = 1;
    --bucket.pending;
  }
  stats_.launched_in_backward = launched_in_hooks_;
  launch_ready_buckets();

  const auto start = std::chrono::steady_clock::now();
  for (Bucket& bucket : buckets_) bucket.work->wait();
  stats_.finalize_wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  for (Bucket& bucket : buckets_) {
    at::Tensor grads = bucket.flat.narrow(0, 0, bucket.grad_numel);
    grads.div_(comm_.size());
    at::Tensor counts = bucket.flat.narrow(0, bucket.grad_numel, static_cast<int64_t>(bucket.params.size())).to(at::kCPU, at::kFloat);
    const float* count = counts.data_ptr<float>();
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) {
      if (count[slot] <= 0) continue;  // no rank had a gradient: leave .grad undefined, as one process would
      const at::Tensor& p = parameters_[bucket.params[slot]];
      at::Tensor averaged = grads.narrow(0, bucket.offsets[slot], p.numel()).view(p.sizes());
      at::Tensor& grad = p.mutable_grad();
      if (!grad.defined()) grad = at::empty_like(p, p.options().requires_grad(false));
      grad.copy_(averaged);
    }
  }
  reset_step();
}

void GradientReducer::reset_step() {
  for (Bucket& bucket : buckets_) {
    bucket.flat.narrow(0, bucket.grad_numel, static_cast<int64_t>(bucket.params.size())).zero_();
    bucket.pending = bucket.params.size();
    bucket.work.reset();
  }
  std::fill(arrived_.begin(), arrived_.end(), 0);
  next_launch_ = 0;
  launched_in_hooks_ = 0;
}

GradientReducer::NoSync::NoSync(GradientReducer& reducer) : reducer_(reducer) {
  std::lock_guard<std::mutex> lock(reducer_.mutex_);
  previous_ = reducer_.sync_;
  reducer_.sync_ = false;
}

GradientReducer::NoSync::~NoSync() {
  std::lock_guard<std::mutex> lock(reducer_.mutex_);
  reducer_.sync_ = previous_;
}

}  // namespace gf::dist
