// NCCL backend: the unique id made on rank 0 and broadcast over MPI, one communicator per
// job, CUDA tensors. Stream order, as c10d's ProcessGroupNCCL: each collective runs on the
// communicator's own high-priority stream after the work already queued on the caller's
// current CUDA stream (the training thread's; in an autograd hook, the stream backward made
// the gradient on), so a bucket's all-reduce overlaps the rest of backward. Later work on the
// stream current at wait() waits for it (at once for blocking calls, in Work::wait() for
// all_reduce_async). Tensor lifetime: the watchdog holds every tensor a collective touches
// until its completion event fires, so the caching allocator cannot hand their memory to
// other work while NCCL still reads or writes it.
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/backends.hpp"
#include "dist/watchdog.hpp"

#if NCCL_VERSION_CODE < 21000
#error "greenfound's NCCL backend needs NCCL >= 2.10 (ncclAvg)"
#endif

namespace gf::dist {
namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("dist (nccl): ") + what + ": " + cudaGetErrorString(status));
  }
}

void check_nccl(ncclResult_t status, const char* what) {
  if (status != ncclSuccess) {
    throw std::runtime_error(std::string("dist (nccl): ") + what + ": " + ncclGetErrorString(status));
  }
}

ncclDataType_t nccl_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kByte: return ncclUint8;
    default:
      throw std::runtime_error(std::string("dist (nccl): tensor dtype: found ") + at::toString(type) +
                               ", expected float32/64, float16, bfloat16, int32, int64 or uint8");
  }
}

using Event = c10::cuda::CUDAEvent;  // created on first record, on the recording stream's device

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<Event> done, c10::DeviceIndex device) : done_(std::move(done)), device_(device) {}
  void wait() override { done_->block(c10::cuda::getCurrentCUDAStream(device_)); }

 private:
  std::shared_ptr<Event> done_;
  c10::DeviceIndex device_;
};

// The CUDA device of this rank: options.device_index, else local rank modulo the visible GPUs.
c10::DeviceIndex rank_device(const World& world, const CommunicatorOptions& options) {
  int count = 0;
  check_cuda(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (count == 0) throw std::runtime_error("dist (nccl): found no CUDA device, expected one per rank");
  return static_cast<c10::DeviceIndex>(options.device_index >= 0 ? options.device_index : world.local_rank % count);
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const World& world, const CommunicatorOptions& options)
      : world_(world),
        watchdog_(world, options.timeout_s),
        device_(rank_device(world, options)),
        stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_)) {
    const c10::cuda::CUDAGuard guard(device_);
    if (world_.uses_mpi) MPI_Comm_dup(MPI_COMM_WORLD, &mpi_comm_);
    ncclUniqueId id{};
    if (world_.rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    Watchdog::Ticket ticket = watchdog_.begin("nccl_init", -1);
    if (world_.size > 1) MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_comm_);
    check_nccl(ncclCommInitRank(&comm_, world_.size, id, world_.rank), "ncclCommInitRank");
    watchdog_.end(ticket);
  }

  ~NcclCommunicator() override {
    const c10::cuda::CUDAGuard guard(device_);
    Watchdog::Ticket ticket = watchdog_.begin("nccl_destroy", step());
    cudaStreamSynchronize(stream_.stream());
    ncclCommDestroy(comm_);
    watchdog_.end(ticket);
    if (mpi_comm_ != MPI_COMM_NULL) MPI_Comm_free(&mpi_comm_);
  }

  Backend backend() const override { return Backend::kNccl; }
  int rank() const override { return world_.rank; }
  int size() const override { return world_.size; }

  void all_reduce(at::Tensor& tensor, ReduceOp op) override {
    all_reduce_async(tensor, op)->wait();
  }

  std::shared_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) override {
    check_tensor(tensor, "all_reduce");
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    const ncclRedOp_t reduce = op == ReduceOp::kAvg ? ncclAvg : ncclSum;
    auto done = enqueue("all_reduce", {tensor}, [&](cudaStream_t stream) {
      check_nccl(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type, reduce, comm_, stream),
                 "ncclAllReduce");
    });
    return std::make_shared<NcclWork>(std::move(done), device_);
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check_tensor(tensor, "broadcast");
    if (root < 0 || root >= world_.size) {
      throw std::runtime_error("dist (nccl): broadcast root: found " + std::to_string(root) + ", expected 0.." +
                               std::to_string(world_.size - 1));
    }
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    auto done = enqueue("broadcast", {tensor}, [&](cudaStream_t stream) {
      check_nccl(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type, root, comm_, stream),
                 "ncclBroadcast");
    });
    NcclWork(done, device_).wait();
  }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    check_tensor(tensor, "all_gather");
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    std::vector<int64_t> shape{world_.size};
    shape.insert(shape.end(), tensor.sizes().begin(), tensor.sizes().end());
    at::Tensor output = at::empty(shape, tensor.options());
    auto done = enqueue("all_gather", {tensor, output}, [&](cudaStream_t stream) {
      check_nccl(ncclAllGather(tensor.data_ptr(), output.data_ptr(), tensor.numel(), type, comm_, stream),
                 "ncclAllGather");
    });
    NcclWork(done, device_).wait();
    return output;
  }

  at::Tensor all_gatherv(const at::Tensor& tensor) override {
    check_tensor(tensor, "all_gatherv");
    if (tensor.dim() < 1) throw std::runtime_error("dist (nccl): all_gatherv: found a 0-dim tensor, expected rows along dim 0");
    const ncclDataType_t type = nccl_type(tensor.scalar_type());
    int64_t row_numel = 1;
    for (int64_t d = 1; d < tensor.dim(); ++d) row_numel *= tensor.size(d);
    // Row counts travel over MPI (host values); the rows as one grouped broadcast per rank.
    std::vector<int64_t> meta(2 * world_.size);
    const int64_t mine[2] = {tensor.size(0), row_numel};
    if (world_.size > 1) {
      Watchdog::Ticket ticket = watchdog_.begin("all_gatherv (sizes)", step());
      MPI_Allgather(mine, 2, MPI_INT64_T, meta.data(), 2, MPI_INT64_T, mpi_comm_);
      watchdog_.end(ticket);
    } else {
      meta = {mine[0], mine[1]};
    }
    std::vector<int64_t> displs(world_.size);
    int64_t total = 0;
    for (int r = 0; r < world_.size; ++r) {
      if (meta[2 * r + 1] != row_numel) {
        throw std::runtime_error("dist (nccl): all_gatherv: rank " + std::to_string(r) + " sent rows of " +
                                 std::to_string(meta[2 * r + 1]) + " elements, expected " + std::to_string(row_numel) +
                                 " as on rank " + std::to_string(world_.rank));
      }
      displs[r] = total;
      total += meta[2 * r];
    }
    std::vector<int64_t> shape = tensor.sizes().vec();
    shape[0] = total;
    at::Tensor output = at::empty(shape, tensor.options());
    if (output.numel() == 0) return output;
    auto* out = static_cast<char*>(output.data_ptr());
    const int64_t row_bytes = row_numel * static_cast<int64_t>(tensor.element_size());
    auto done = enqueue("all_gatherv", {tensor, output}, [&](cudaStream_t stream) {
      check_nccl(ncclGroupStart(), "ncclGroupStart");
      for (int r = 0; r < world_.size; ++r) {
        if (meta[2 * r] == 0) continue;
        void* recv = out + displs[r] * row_bytes;
        const void* send = r == world_.rank ? tensor.data_ptr() : recv;
        check_nccl(ncclBroadcast(send, recv, meta[2 * r] * row_numel, type, r, comm_, stream), "ncclBroadcast");
      }
      check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    });
    NcclWork(done, device_).wait();
    return output;
  }

  void barrier() override {
    if (world_.size == 1) return;
    c10::cuda::getCurrentCUDAStream(device_).synchronize();
    Watchdog::Ticket ticket = watchdog_.begin("barrier", step());
    MPI_Barrier(mpi_comm_);
    watchdog_.end(ticket);
  }

 private:
  void check_tensor(const at::Tensor& tensor, const char* operation) const {
    if (!tensor.defined() || !tensor.is_cuda() || !tensor.is_contiguous()) {
      throw std::runtime_error(std::string("dist (nccl): ") + operation +
                               ": found an undefined, non-CUDA or non-contiguous tensor, expected a contiguous CUDA tensor");
    }
    if (tensor.device().index() != device_) {
      throw std::runtime_error(std::string("dist (nccl): ") + operation + ": found a tensor on cuda:" +
                               std::to_string(tensor.device().index()) + ", expected cuda:" + std::to_string(device_));
    }
  }

  // Runs `launch` on the communicator's stream after the work queued so far on the current
  // stream; the returned event marks completion. The watchdog holds `tensors` until it fires
  // (an error counts as fired: the next CUDA call reports it).
  std::shared_ptr<Event> enqueue(const char* operation, std::vector<at::Tensor> tensors,
                                 const std::function<void(cudaStream_t)>& launch) {
    const c10::cuda::CUDAGuard guard(device_);
    Event ready;
    ready.record(c10::cuda::getCurrentCUDAStream(device_));
    ready.block(stream_);
    launch(stream_.stream());
    auto done = std::make_shared<Event>();
    done->record(stream_);
    watchdog_.begin(operation, step(), [done, tensors = std::move(tensors)] {
      return cudaEventQuery(done->event()) != cudaErrorNotReady;
    });
    return done;
  }

  World world_;
  Watchdog watchdog_;
  c10::DeviceIndex device_;
  c10::cuda::CUDAStream stream_;  // from LibTorch's pool, so the allocator and profiler know it
  MPI_Comm mpi_comm_ = MPI_COMM_NULL;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const World& world, const CommunicatorOptions& options) {
  return std::make_unique<NcclCommunicator>(world, options);
}

}  // namespace gf::dist
