#pragma once
// One collective interface, two backends behind it (DESIGN.md, Distributed): MPI for CPU
// tensors (CI, CPU clusters) and NCCL for CUDA tensors. Every collective is watched: one
// that does not finish within options.timeout_s aborts the whole job, naming rank, host,
// operation and step (dist/watchdog.hpp). Collectives must be issued in the same order on
// every rank; a Communicator is used from one thread at a time (the gradient reducer's hooks
// run on the autograd thread while the training thread waits in backward, which is fine).
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/enum_names.hpp"
#include "dist/world.hpp"

namespace gf::dist {

enum class Backend { kAuto, kMpi, kNccl };
inline constexpr base::EnumName<Backend> kBackendNames[] = {
    {"auto", Backend::kAuto}, {"mpi", Backend::kMpi}, {"nccl", Backend::kNccl}};
std::string backend_name(Backend backend);  // "auto" | "mpi" | "nccl"

enum class ReduceOp { kSum, kAvg };  // kAvg: sum divided by the world size

struct CommunicatorOptions {
  double timeout_s = 600;              // watchdog: a collective running longer aborts the job
  at::DeviceType device = at::kCPU;    // where the tensors live (kAuto picks NCCL for kCUDA)
  int device_index = -1;               // NCCL's CUDA device; -1 = local_rank modulo the visible GPUs
};

// The backend make_communicator uses: kAuto → NCCL for CUDA tensors, else MPI. Throws for
// NCCL without CUDA tensors.
Backend select_backend(Backend requested, at::DeviceType device);

// Completion of a non-blocking collective. wait() blocks until the result is in the tensor
// (NCCL: stream-ordered, later work on the caller's current CUDA stream sees it) and
// rethrows errors.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual Backend backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place on a contiguous tensor (float32 on every backend; MPI also float64/int32/int64/
  // uint8 for kSum; NCCL also bfloat16/float16).
  virtual void all_reduce(at::Tensor& tensor, ReduceOp op) = 0;
  // Starts the all-reduce and returns; the tensor must stay untouched until wait().
  virtual std::shared_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) = 0;
  // In place: every rank ends with root's values (same shape and dtype on every rank).
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // Same shape on every rank → [size, ...shape], rank order.
  virtual at::Tensor all_gather(const at::Tensor& tensor) = 0;
  // dim 0 may differ between ranks (the other dims may not) → concatenated along dim 0 in
  // rank order; a rank may contribute 0 rows.
  virtual at::Tensor all_gatherv(const at::Tensor& tensor) = 0;
  virtual void barrier() = 0;

  // The training step that the watchdog names when a collective hangs.
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }

 protected:
  std::atomic<int64_t> step_{-1};
};

// Collective over the world (every rank calls it with the same backend and options).
std::unique_ptr<Communicator> make_communicator(Backend backend, const World& world,
                                                const CommunicatorOptions& options = {});
// The communicator of a stage that exchanges CPU tensors only (embed, probe: gathers of
// results): MPI over `world`, or null when the world is one rank.
std::unique_ptr<Communicator> make_stage_communicator(const World& world, const CommunicatorOptions& options = {});

}  // namespace gf::dist
