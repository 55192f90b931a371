#pragma once
// Data-parallel gradient averaging, PyTorch DDP's recipe without DDP (LibTorch's C++ API has
// none): rank 0's parameters are broadcast at construction; gradients are copied into flat
// buckets (≈25 MB, reverse parameter order, the order backward produces them) by autograd
// hooks, and a bucket's all-reduce starts as soon as its last gradient arrives, overlapping
// the rest of backward. finalize() waits and writes the averaged gradients back.
//
//   GradientReducer reducer(comm, parameters);
//   for each step:
//     for micro-steps but the last: { auto guard = reducer.no_sync(); loss.backward(); }
//     loss.backward();  reducer.finalize();  optimizer.step();
//
// Gradients are averaged over ranks (sum / world size). A parameter that got no gradient on
// this rank in the step contributes its accumulated .grad or zeros; one that got a gradient
// on no rank keeps an undefined .grad, as on a single process. With one rank nothing is
// hooked and finalize() returns at once.
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "dist/communicator.hpp"

namespace gf::dist {

struct GradientReducerOptions {
  int64_t bucket_bytes = 25 * 1024 * 1024;
};

// Timings of the last synced step, for logs and benchmarks.
struct ReducerStats {
  int buckets = 0;
  int launched_in_backward = 0;  // buckets whose all-reduce a hook started before backward ended
  double finalize_wait_s = 0;    // time finalize() spent waiting on all-reduces
};

class GradientReducer {
 public:
  // Collective (broadcasts rank 0's parameters). `parameters` are leaf tensors that require
  // grad, in the model's order; the communicator must outlive the reducer.
  GradientReducer(Communicator& communicator, std::vector<at::Tensor> parameters,
                  GradientReducerOptions options = {});
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Collective: after the step's backward, waits for every bucket (starting those whose
  // gradients did not all arrive) and writes the averaged gradients into .grad.
  void finalize();

  // While alive, backward only accumulates local gradients (accumulation micro-steps).
  class NoSync {
   public:
    explicit NoSync(GradientReducer& reducer);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    GradientReducer& reducer_;
    bool previous_;
  };
  NoSync no_sync() { return NoSync(*this); }

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  const ReducerStats& last_stats() const { return stats_; }

 private:
  struct Bucket {
    at::Tensor flat;                 // gradients, then one ready count per parameter
    std::vector<size_t> params;      // indices into parameters_
    std::vector<int64_t> offsets;    // element offset of each parameter in flat
    int64_t grad_numel = 0;          // elements before the ready counts
    size_t pending = 0;              // parameters whose gradient has not arrived this step
    std::shared_ptr<Work> work;
  };

  void build_buckets(int64_t bucket_bytes);
  void broadcast_parameters();
  void on_gradient(size_t param_index, const at::Tensor& grad);
  void launch_ready_buckets();  // in bucket order, so every rank issues the same sequence
  void reset_step();

  Communicator& comm_;
  std::vector<at::Tensor> parameters_;
  std::vector<int> hook_ids_;
  std::vector<size_t> bucket_of_;      // parameter index → bucket
  std::vector<size_t> slot_of_;        // parameter index → position in its bucket
  std::vector<char> arrived_;          // parameter index → gradient copied this step
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  int launched_in_hooks_ = 0;  // this step's buckets started from a hook
  bool sync_ = true;
  std::mutex mutex_;
  ReducerStats stats_;
};

}  // namespace gf::dist
