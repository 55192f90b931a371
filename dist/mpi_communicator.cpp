// MPI backend. Debian's Open MPI 4.1 has no asynchronous progress: a non-blocking collective
// only advances inside MPI calls. So every collective runs on one communication thread that
// starts it (MPI_I*) and drives it with MPI_Test until done — the training thread keeps
// computing meanwhile, and one thread per communicator also keeps the collectives in the
// order they were issued, the same on every rank. Blocking calls are queued and waited on.
#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "dist/backends.hpp"
#include "dist/watchdog.hpp"

namespace gf::dist {
namespace {

MPI_Datatype mpi_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kByte: return MPI_UINT8_T;
    default:
      throw std::runtime_error(std::string("dist (mpi): tensor dtype: found ") + at::toString(type) +
                               ", expected float32, float64, int32, int64 or uint8");
  }
}

void check_tensor(const at::Tensor& tensor, const char* operation) {
  if (!tensor.defined()) throw std::runtime_error(std::string("dist (mpi): ") + operation + ": found an undefined tensor");
  if (!tensor.is_contiguous()) {
    throw std::runtime_error(std::string("dist (mpi): ") + operation + ": found a non-contiguous tensor, expected a contiguous one");
  }
}

// A CUDA tensor (a GPU machine without NCCL) is staged through host memory.
at::Tensor to_host(const at::Tensor& tensor) { return tensor.is_cpu() ? tensor : tensor.to(at::kCPU); }

// MPI_Test polling with a short sleep once the collective is not quick: keeps the comm thread
// from taking a core away from backward on machines with few cores, at <0.2 ms latency cost.
void wait_request(MPI_Request& request) {
  int done = 0;
  for (int polls = 0;; ++polls) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (polls < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 256 ? 20 : 100));
    }
  }
}

class Job {
 public:
  Job(std::string operation, int64_t step, std::function<void()> run)
      : operation_(std::move(operation)), step_(step), run_(std::move(run)) {}
  const std::string& operation() const { return operation_; }
  int64_t step() const { return step_; }
  void run() {
    try {
      run_();
      done_.set_value();
    } catch (...) {
      done_.set_exception(std::current_exception());
    }
  }
  std::shared_future<void> future() { return done_.get_future().share(); }

 private:
  std::string operation_;
  int64_t step_;
  std::function<void()> run_;
  std::promise<void> done_;
};

class FutureWork : public Work {
 public:
  explicit FutureWork(std::shared_future<void> future) : future_(std::move(future)) {}
  void wait() override { future_.get(); }

 private:
  std::shared_future<void> future_;
};

class DoneWork : public Work {
 public:
  void wait() override {}
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(const World& world, const CommunicatorOptions& options) : world_(world) {
    if (world_.size == 1 && !world_.uses_mpi) return;  // a lone process: every collective is local
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    watchdog_ = std::make_unique<Watchdog>(world_, options.timeout_s);
    thread_ = std::thread([this] { serve(); });
  }

  ~MpiCommunicator() override {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
    thread_.join();
    MPI_Comm_free(&comm_);
  }

  Backend backend() const override { return Backend::kMpi; }
  int rank() const override { return world_.rank; }
  int size() const override { return world_.size; }

  void all_reduce(at::Tensor& tensor, ReduceOp op) override { all_reduce_async(tensor, op)->wait(); }

  std::shared_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) override {
    check_tensor(tensor, "all_reduce");
    MPI_Datatype type = mpi_type(tensor.scalar_type());
    if (op == ReduceOp::kAvg && !at::isFloatingType(tensor.scalar_type())) {
      throw std::runtime_error(std::string("dist (mpi): all_reduce avg: found dtype ") +
                               at::toString(tensor.scalar_type()) + ", expected a floating-point tensor");
    }
    if (local()) return std::make_shared<DoneWork>();
    const int count = checked_count(tensor.numel());
    return submit("all_reduce", [this, tensor, op, type, count] {
      at::Tensor host = to_host(tensor);
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), count, type, MPI_SUM, comm_, &request);
      wait_request(request);
      if (op == ReduceOp::kAvg) host.div_(world_.size);
      if (!host.is_same(tensor)) tensor.copy_(host);
    });
  }

  void broadcast(at::Tensor& tensor, int root) override {
    check_tensor(tensor, "broadcast");
    MPI_Datatype type = mpi_type(tensor.scalar_type());
    if (root < 0 || root >= world_.size) {
      throw std::runtime_error("dist (mpi): broadcast root: found " + std::to_string(root) + ", expected 0.." +
                               std::to_string(world_.size - 1));
    }
    if (local()) return;
    at::Tensor target = tensor;
    const int count = checked_count(tensor.numel());
    submit("broadcast", [this, target, root, type, count]() mutable {
      at::Tensor host = to_host(target);
      MPI_Request request;
      MPI_Ibcast(host.data_ptr(), count, type, root, comm_, &request);
      wait_request(request);
      if (!host.is_same(target)) target.copy_(host);
    })->wait();
  }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    check_tensor(tensor, "all_gather");
    MPI_Datatype type = mpi_type(tensor.scalar_type());
    std::vector<int64_t> shape{world_.size};
    shape.insert(shape.end(), tensor.sizes().begin(), tensor.sizes().end());
    if (local()) return tensor.clone().reshape(shape);
    at::Tensor output = at::empty(shape, tensor.options().device(at::kCPU));
    const int count = checked_count(tensor.numel());
    submit("all_gather", [this, tensor, output, type, count] {
      at::Tensor host = to_host(tensor);
      MPI_Request request;
      MPI_Iallgather(host.data_ptr(), count, type, output.data_ptr(), count, type, comm_, &request);
      wait_request(request);
    })->wait();
    return output.to(tensor.device());
  }

  at::Tensor all_gatherv(const at::Tensor& tensor) override {
    check_tensor(tensor, "all_gatherv");
    if (tensor.dim() < 1) throw std::runtime_error("dist (mpi): all_gatherv: found a 0-dim tensor, expected rows along dim 0");
    MPI_Datatype type = mpi_type(tensor.scalar_type());
    if (local()) return tensor.clone();
    // Row counts first (with each rank's row size, which must agree), then the rows.
    int64_t row_numel = 1;
    for (int64_t d = 1; d < tensor.dim(); ++d) row_numel *= tensor.size(d);
    at::Tensor all_meta = all_gather(at::tensor(std::vector<int64_t>{tensor.dim(), tensor.size(0), row_numel}, at::kLong));
    std::vector<int> rows(world_.size), displs(world_.size);
    int64_t total = 0;
    for (int r = 0; r < world_.size; ++r) {
      const int64_t dim = all_meta[r][0].item<int64_t>(), row_elems = all_meta[r][2].item<int64_t>();
      if (dim != tensor.dim() || row_elems != row_numel) {
        throw std::runtime_error("dist (mpi): all_gatherv: rank " + std::to_string(r) + " sent " +
                                 std::to_string(dim) + "-dim rows of " + std::to_string(row_elems) +
                                 " elements, expected the shape after dim 0 of rank " + std::to_string(world_.rank) +
                                 " (" + std::to_string(tensor.dim()) + "-dim, " + std::to_string(row_numel) + ")");
      }
      rows[r] = checked_count(all_meta[r][1].item<int64_t>());
      displs[r] = checked_count(total);
      total += rows[r];
    }
    std::vector<int64_t> shape = tensor.sizes().vec();
    shape[0] = total;
    at::Tensor output = at::empty(shape, tensor.options().device(at::kCPU));
    if (output.numel() == 0) return output.to(tensor.device());
    const int row_count = checked_count(row_numel);
    submit("all_gatherv", [this, tensor, output, type, rows, displs, row_count] {
      at::Tensor host = to_host(tensor);
      MPI_Datatype row_type;
      MPI_Type_contiguous(row_count, type, &row_type);
      MPI_Type_commit(&row_type);
      MPI_Request request;
      MPI_Iallgatherv(host.data_ptr(), rows[world_.rank], row_type, output.data_ptr(), rows.data(), displs.data(),
                      row_type, comm_, &request);
      wait_request(request);
      MPI_Type_free(&row_type);
    })->wait();
    return output.to(tensor.device());
  }

  void barrier() override {
    if (local()) return;
    submit("barrier", [this] {
      MPI_Request request;
      MPI_Ibarrier(comm_, &request);
      wait_request(request);
    })->wait();
  }

 private:
  bool local() const { return !thread_.joinable(); }

  // MPI counts are int: larger tensors are refused before any rank enters the collective.
  static int checked_count(int64_t count) {
    if (count > INT32_MAX) {
      throw std::runtime_error("dist (mpi): collective of " + std::to_string(count) +
                               " elements, expected at most 2^31-1 per call (split the tensor)");
    }
    return static_cast<int>(count);
  }

  std::shared_ptr<Work> submit(const char* operation, std::function<void()> run) {
    auto job = std::make_shared<Job>(operation, step(), std::move(run));
    auto work = std::make_shared<FutureWork>(job->future());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(job));
    }
    ready_.notify_one();
    return work;
  }

  void serve() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and nothing left to run
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      Watchdog::Ticket ticket = watchdog_->begin(job->operation(), job->step());
      job->run();
      watchdog_->end(ticket);
    }
  }

  World world_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<Watchdog> watchdog_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const World& world, const CommunicatorOptions& options) {
  return std::make_unique<MpiCommunicator>(world, options);
}

}  // namespace gf::dist
