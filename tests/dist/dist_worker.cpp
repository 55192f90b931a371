// One rank of a dist/ test job: `mpirun -n 2 dist_worker <scenario> [cuda]` (test_dist_mpi.cpp
// and, with `cuda` for the NCCL backend, test_dist_gpu.cpp start it and read the exit status
// and output). A failed check throws; the error is
// printed with the rank and the whole job ends non-zero.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <c10/cuda/CUDAFunctions.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "dist/communicator.hpp"
#include "dist/gradient_reducer.hpp"
#include "dist/world.hpp"

namespace {

using gf::dist::Communicator;
using gf::dist::GradientReducer;
using gf::dist::ReduceOp;
using gf::dist::World;
using Clock = std::chrono::steady_clock;

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("check failed: " + what);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// A small MLP with a parameter that never takes part in forward.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(6, 32));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({32})));
    fc2 = register_module("fc2", torch::nn::Linear(32, 32));
    head = register_module("head", torch::nn::Linear(32, 4));
    unused = register_parameter("unused", at::ones({3}));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = torch::nn::functional::gelu(norm(fc1(x)));
    return head(torch::nn::functional::gelu(fc2(h)));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  at::Tensor unused;
};
TORCH_MODULE(Net);

Net make_net(uint64_t seed) {
  at::manual_seed(seed);
  return Net();
}

struct Batch {
  at::Tensor x, y;
};

Batch full_batch(int64_t n) {
  at::manual_seed(1234);
  return {at::randn({n, 6}), at::randn({n, 4})};
}

at::Tensor loss_of(Net& net, const at::Tensor& x, const at::Tensor& y) {
  return torch::nn::functional::mse_loss(net->forward(x), y);
}

void compare_grads(Net& reference, Net& distributed, double tolerance, const World& world) {
  auto ref = reference->named_parameters();
  auto got = distributed->named_parameters();
  for (const auto& item : ref) {
    const at::Tensor& a = item.value().grad();
    const at::Tensor& b = got[item.key()].grad();
    check(a.defined() == b.defined(), item.key() + ": grad defined on one side only (rank " + std::to_string(world.rank) + ")");
    if (!a.defined()) continue;
    const double diff = max_diff(a, b);
    check(diff <= tolerance, item.key() + ": grad differs by " + std::to_string(diff) + " from the one-process gradient");
  }
}

void scenario_collectives(const World& world, Communicator& comm) {
  check(comm.size() == 2 && world.size == 2, "expected 2 ranks");
  const int r = comm.rank();
  at::Tensor a = at::full({5}, static_cast<float>(r + 1));
  comm.all_reduce(a, ReduceOp::kSum);
  check(a.eq(3).all().item<bool>(), "all_reduce sum float");
  at::Tensor b = at::arange(4, at::kDouble) * (r + 1);
  comm.all_reduce(b, ReduceOp::kAvg);
  check(max_diff(b, at::arange(4, at::kDouble) * 1.5) == 0, "all_reduce avg double");
  at::Tensor c = at::full({3}, int64_t{10} * (r + 1), at::kLong);
  comm.all_reduce(c, ReduceOp::kSum);
  check(c.eq(30).all().item<bool>(), "all_reduce sum int64");
  bool threw = false;
  try {
    comm.all_reduce(c, ReduceOp::kAvg);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  check(threw, "all_reduce avg of int64 must be refused");

  // Several non-blocking all-reduces in flight, waited in reverse order.
  std::vector<at::Tensor> tensors;
  std::vector<std::shared_ptr<gf::dist::Work>> works;
  for (int i = 0; i < 4; ++i) {
    tensors.push_back(at::full({1000 * (i + 1)}, static_cast<float>(i * (r + 1))));
    works.push_back(comm.all_reduce_async(tensors.back(), ReduceOp::kAvg));
  }
  for (int i = 3; i >= 0; --i) {
    works[i]->wait();
    check(tensors[i].eq(i * 1.5f).all().item<bool>(), "all_reduce_async avg #" + std::to_string(i));
  }

  at::Tensor d = r == 1 ? at::arange(6, at::kFloat).reshape({2, 3}) : at::zeros({2, 3});
  comm.broadcast(d, 1);
  check(max_diff(d, at::arange(6, at::kFloat).reshape({2, 3})) == 0, "broadcast from rank 1");

  at::Tensor g = comm.all_gather(at::full({2, 2}, static_cast<float>(r)));
  check(g.sizes() == at::IntArrayRef({2, 2, 2}) && g[0].eq(0).all().item<bool>() && g[1].eq(1).all().item<bool>(),
        "all_gather stacks in rank order");

  // Uneven rows: rank 0 sends 1 row, rank 1 sends 3; then rank 0 sends none.
  at::Tensor rows = at::full({r == 0 ? 1 : 3, 4}, static_cast<float>(r + 1));
  at::Tensor v = comm.all_gatherv(rows);
  at::Tensor expected = at::cat({at::full({1, 4}, 1.f), at::full({3, 4}, 2.f)});
  check(v.sizes() == expected.sizes() && max_diff(v, expected) == 0, "all_gatherv with 1 and 3 rows");
  at::Tensor ids = at::arange(r * 5, r * 5 + (r == 0 ? 0 : 2), at::kLong);
  at::Tensor w = comm.all_gatherv(ids);
  check(w.sizes() == at::IntArrayRef({2}) && w[0].item<int64_t>() == 5 && w[1].item<int64_t>() == 6,
        "all_gatherv with 0 and 2 int64 rows");

  // barrier: rank 1 arrives late; rank 0 must not pass before it arrived.
  at::Tensor stamp = at::zeros({1}, at::kDouble);
  if (r == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double before = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  comm.barrier();
  const double after = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  stamp[0] = r == 1 ? before : 0.0;
  comm.all_reduce(stamp, ReduceOp::kSum);
  check(after >= stamp[0].item<double>(), "barrier returned before the late rank arrived");
  std::cout << "rank " << r << ": collectives ok" << std::endl;
}

// 2 ranks with half of a batch each give the gradients of one process with the whole batch.
void scenario_reducer_equivalence(const World& world, Communicator& comm) {
  const int r = comm.rank();
  Batch batch = full_batch(8);
  Net reference = make_net(7);
  loss_of(reference, batch.x, batch.y).backward();

  Net net = make_net(7 + r);  // rank 1 starts elsewhere: the reducer broadcasts rank 0's weights
  gf::dist::GradientReducerOptions options;
  options.bucket_bytes = 2048;
  GradientReducer reducer(comm, net->parameters(), options);
  for (const auto& item : reference->named_parameters()) {
    check(max_diff(item.value(), net->named_parameters()[item.key()]) == 0, item.key() + ": not broadcast from rank 0");
  }
  for (int step = 0; step < 2; ++step) {  // twice: the reducer resets between steps
    for (auto& p : net->parameters()) p.mutable_grad() = at::Tensor();
    loss_of(net, batch.x.narrow(0, 4 * r, 4), batch.y.narrow(0, 4 * r, 4)).backward();
    reducer.finalize();
    compare_grads(reference, net, 1e-6, world);
  }
  check(!net->unused.grad().defined(), "a parameter no rank used must keep an undefined grad");
  std::cout << "rank " << r << ": reducer equivalence ok (" << reducer.num_buckets() << " buckets)" << std::endl;
}

// Accumulation: two micro-steps (the first under no_sync) on 2 ranks = one process summing
// the same four micro-batches.
void scenario_reducer_no_sync(const World& world, Communicator& comm) {
  const int r = comm.rank();
  Batch batch = full_batch(8);
  Net reference = make_net(3);
  for (int m = 0; m < 2; ++m) (loss_of(reference, batch.x.narrow(0, 4 * m, 4), batch.y.narrow(0, 4 * m, 4)) / 2).backward();

  Net net = make_net(3);
  gf::dist::GradientReducerOptions options;
  options.bucket_bytes = 1024;
  GradientReducer reducer(comm, net->parameters(), options);
  // Rank r's micro-batches are rows {4m + 2r, 4m + 2r + 1} of micro-step m.
  {
    auto guard = reducer.no_sync();
    (loss_of(net, batch.x.narrow(0, 2 * r, 2), batch.y.narrow(0, 2 * r, 2)) / 2).backward();
  }
  // After the no_sync micro-step the gradients are still this rank's own.
  at::Tensor local = net->head->weight.grad().clone();
  at::Tensor both = comm.all_gather(local);
  check(max_diff(both[0], both[1]) > 0, "no_sync must not all-reduce");
  (loss_of(net, batch.x.narrow(0, 4 + 2 * r, 2), batch.y.narrow(0, 4 + 2 * r, 2)) / 2).backward();
  reducer.finalize();
  compare_grads(reference, net, 1e-6, world);
  std::cout << "rank " << r << ": no_sync accumulation ok" << std::endl;
}

// Forwards to the real communicator, recording when the first all-reduce was started.
class RecordingCommunicator : public Communicator {
 public:
  explicit RecordingCommunicator(Communicator& inner) : inner_(inner) {}
  gf::dist::Backend backend() const override { return inner_.backend(); }
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void all_reduce(at::Tensor& t, ReduceOp op) override { inner_.all_reduce(t, op); }
  std::shared_ptr<gf::dist::Work> all_reduce_async(at::Tensor t, ReduceOp op) override {
    if (launches++ == 0) first_launch = Clock::now();
    return inner_.all_reduce_async(t, op);
  }
  void broadcast(at::Tensor& t, int root) override { inner_.broadcast(t, root); }
  at::Tensor all_gather(const at::Tensor& t) override { return inner_.all_gather(t); }
  at::Tensor all_gatherv(const at::Tensor& t) override { return inner_.all_gatherv(t); }
  void barrier() override { inner_.barrier(); }

  int launches = 0;
  Clock::time_point first_launch;

 private:
  Communicator& inner_;
};

// The first bucket's all-reduce starts while backward is still producing gradients: before
// the hook of the model's first parameter (the last gradient backward computes) fires.
void scenario_reducer_overlap(const World& world, Communicator& comm) {
  RecordingCommunicator recording(comm);
  Net net = make_net(11);
  gf::dist::GradientReducerOptions options;
  options.bucket_bytes = 4096;  // several buckets for this small model
  GradientReducer reducer(recording, net->parameters(), options);
  check(reducer.num_buckets() >= 3, "expected at least 3 buckets, found " + std::to_string(reducer.num_buckets()));
  Clock::time_point last_gradient;
  int launches_at_last_gradient = -1;
  net->fc1->weight.register_hook([&](const at::Tensor&) {
    last_gradient = Clock::now();
    launches_at_last_gradient = recording.launches;
  });
  Batch batch = full_batch(8);
  loss_of(net, batch.x.narrow(0, 4 * comm.rank(), 4), batch.y.narrow(0, 4 * comm.rank(), 4)).backward();
  const Clock::time_point backward_end = Clock::now();
  const int launches_in_backward = recording.launches;
  reducer.finalize();
  check(launches_at_last_gradient >= 1, "no bucket all-reduce had started when the last gradient arrived");
  check(recording.first_launch < last_gradient && recording.first_launch < backward_end,
        "the first bucket's all-reduce did not start during backward");
  // `unused` never gets a gradient, so its bucket waits for finalize(); every other one started in backward.
  check(reducer.last_stats().launched_in_backward == launches_in_backward && launches_in_backward >= 2,
        "expected most buckets started from hooks, found " + std::to_string(launches_in_backward));
  std::cout << "rank " << comm.rank() << ": overlap ok (" << launches_at_last_gradient << " of "
            << reducer.num_buckets() << " buckets started before the last gradient)" << std::endl;
}

// Rank 1 arrives a minute late; rank 0's watchdog (2 s) must end the job long before.
void scenario_watchdog(const World& world, Communicator& comm) {
  comm.set_step(17);
  if (comm.rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
  at::Tensor t = at::ones({4});
  comm.all_reduce(t, ReduceOp::kSum);
  throw std::runtime_error("the all_reduce returned although rank 1 never joined");
}

// Rank 1 dies by SIGKILL while a large all-reduce is in flight; rank 0 keeps reducing.
void scenario_kill_rank(const World& world, Communicator& comm) {
  at::Tensor big = at::ones({4 << 20});
  comm.all_reduce(big, ReduceOp::kSum);  // both alive here
  if (comm.rank() == 1) {
    auto work = comm.all_reduce_async(big, ReduceOp::kSum);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::raise(SIGKILL);
  }
  for (int i = 0; i < 1000; ++i) comm.all_reduce(big, ReduceOp::kSum);
  throw std::runtime_error("rank 0 finished 1000 all-reduces with a dead peer");
}

// A process started by hand: a world of one without MPI, every collective local.
void scenario_single(const World& world, Communicator& comm) {
  check(world.size == 1 && world.rank == 0 && !world.uses_mpi, "expected a world of 1 without MPI");
  at::Tensor t = at::full({3}, 2.f);
  comm.all_reduce(t, ReduceOp::kAvg);
  comm.broadcast(t, 0);
  comm.barrier();
  check(t.eq(2).all().item<bool>(), "local all_reduce/broadcast changed values");
  check(comm.all_gatherv(at::ones({2, 3})).sizes() == at::IntArrayRef({2, 3}), "local all_gatherv");
  Net net = make_net(5);
  GradientReducer reducer(comm, net->parameters());
  Batch batch = full_batch(4);
  loss_of(net, batch.x, batch.y).backward();
  at::Tensor before = net->head->weight.grad().clone();
  reducer.finalize();
  check(max_diff(before, net->head->weight.grad()) == 0, "one-rank finalize changed gradients");
  std::cout << "single process ok" << std::endl;
}

// One rank per local GPU (NCCL, CUDA tensors): the collectives for any rank count, and the
// reducer giving one process's gradients of the whole batch.
void scenario_nccl(const World& world, Communicator& comm) {
  check(comm.backend() == gf::dist::Backend::kNccl, "expected the NCCL backend");
  const int r = comm.rank(), n = comm.size();
  const at::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank % c10::cuda::device_count()));
  const auto cuda = at::TensorOptions().device(device);
  at::Tensor a = at::full({5}, static_cast<float>(r + 1), cuda);
  comm.all_reduce(a, ReduceOp::kSum);
  check(a.cpu().eq(n * (n + 1) / 2).all().item<bool>(), "all_reduce sum");
  at::Tensor b = at::full({3}, static_cast<float>(2 * r), cuda.dtype(at::kBFloat16));
  comm.all_reduce(b, ReduceOp::kAvg);
  check(b.cpu().eq(n - 1).all().item<bool>(), "all_reduce avg bfloat16");
  at::Tensor c = at::full({4}, static_cast<float>(r), cuda);
  comm.broadcast(c, n - 1);
  check(c.cpu().eq(n - 1).all().item<bool>(), "broadcast from the last rank");
  const at::Tensor g = comm.all_gather(at::full({2}, static_cast<float>(r), cuda)).cpu();
  for (int k = 0; k < n; ++k) check(g[k].eq(k).all().item<bool>(), "all_gather in rank order");
  const at::Tensor v = comm.all_gatherv(at::full({r, 3}, static_cast<float>(r), cuda)).cpu();  // rank r sends r rows
  check(v.size(0) == n * (n - 1) / 2, "all_gatherv row count");

  Batch batch = full_batch(4 * n);
  Net reference = make_net(7);
  reference->to(device);
  loss_of(reference, batch.x.to(device), batch.y.to(device)).backward();
  Net net = make_net(7 + r);
  net->to(device);
  gf::dist::GradientReducerOptions options;
  options.bucket_bytes = 2048;
  GradientReducer reducer(comm, net->parameters(), options);
  loss_of(net, batch.x.narrow(0, 4 * r, 4).to(device), batch.y.narrow(0, 4 * r, 4).to(device)).backward();
  reducer.finalize();
  compare_grads(reference, net, 1e-5, world);
  std::cout << "rank " << r << ": nccl ok (" << n << " GPUs, " << reducer.num_buckets() << " buckets)" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, std::function<void(const World&, Communicator&)>> scenarios = {
      {"collectives", scenario_collectives},         {"reducer_equivalence", scenario_reducer_equivalence},
      {"reducer_no_sync", scenario_reducer_no_sync}, {"reducer_overlap", scenario_reducer_overlap},
      {"watchdog", scenario_watchdog},               {"kill_rank", scenario_kill_rank},
      {"single", scenario_single},                   {"world", [](const World&, Communicator&) {}},
      {"nccl", scenario_nccl},
  };
  if (argc < 2 || !scenarios.count(argv[1])) {
    std::cerr << "usage: dist_worker <scenario> [cuda]" << std::endl;
    return 2;
  }
  int rank = 0;
  try {
    at::set_num_threads(1);
    const World& world = gf::dist::init_world();
    rank = world.rank;
    gf::dist::CommunicatorOptions options;
    options.timeout_s = std::string(argv[1]) == "watchdog" ? 2 : 60;
    if (argc > 2 && std::string(argv[2]) == "cuda") options.device = at::kCUDA;
    auto comm = gf::dist::make_communicator(gf::dist::Backend::kAuto, world, options);
    scenarios.at(argv[1])(world, *comm);
  } catch (const std::exception& e) {
    std::cerr << "dist_worker[rank " << rank << "]: error: " << e.what() << std::endl;
    gf::dist::abort_job_if_distributed(EXIT_FAILURE);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
