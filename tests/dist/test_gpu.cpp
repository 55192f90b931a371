// ctest label `gpu`: the NCCL backend and the bucketed reducer on CUDA tensors. In this
// process, a world of one on GPU 0 (no MPI); with several local GPUs, `mpirun -n <GPUs>
// dist_worker nccl` runs one rank per GPU. The overlap checks use at::cuda::sleep, a kernel
// that keeps the compute stream busy: a collective that finishes while that stream is still
// busy ran on a stream of its own, not queued behind the compute.
#include <ATen/ATen.h>
#include <ATen/cuda/Sleep.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "dist/communicator.hpp"
#include "dist/gradient_reducer.hpp"
#include "tests/support/gpu.hpp"
#include "tests/support/run_job.hpp"

namespace gf::dist {
namespace {

// About 50 ms of spinning on an H200 (1.98 GHz): far longer than the collectives checked.
constexpr int64_t kBusyCycles = 100'000'000;

const at::Device kGpu(at::kCUDA, 0);

std::unique_ptr<Communicator> nccl_world_of_one() {
  CommunicatorOptions options;
  options.device = at::kCUDA;
  options.device_index = 0;
  options.timeout_s = 60;
  return make_communicator(Backend::kNccl, World{}, options);
}

// Whether `work` completes while the current stream is still busy: a side stream waits for
// the collective alone, and the host waits for that side stream.
bool finishes_before_current_stream(Work& work) {
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(0);
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, 0);
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    work.wait();
  }
  side.synchronize();
  return !current.query();
}

TEST(GpuNccl, CollectivesOnCudaTensors) {
  GF_SKIP_WITHOUT_GPU();
  auto comm = nccl_world_of_one();
  ASSERT_EQ(comm->backend(), Backend::kNccl);
  const auto cuda = at::TensorOptions().device(kGpu);

  at::Tensor a = at::arange(10, cuda.dtype(at::kFloat));
  comm->all_reduce(a, ReduceOp::kSum);
  EXPECT_TRUE(a.cpu().equal(at::arange(10, at::kFloat)));
  at::Tensor b = at::full({7}, 3.5, cuda.dtype(at::kBFloat16));
  comm->all_reduce(b, ReduceOp::kAvg);
  EXPECT_TRUE(b.cpu().eq(3.5).all().item<bool>());

  at::Tensor c = at::full({2, 3}, 4.0, cuda);
  comm->broadcast(c, 0);
  EXPECT_TRUE(c.cpu().eq(4).all().item<bool>());
  const at::Tensor gathered = comm->all_gather(at::ones({2, 2}, cuda));
  EXPECT_EQ(gathered.sizes(), at::IntArrayRef({1, 2, 2}));
  const at::Tensor rows = comm->all_gatherv(at::arange(6, cuda.dtype(at::kLong)).reshape({3, 2}));
  EXPECT_TRUE(rows.cpu().equal(at::arange(6, at::kLong).reshape({3, 2})));
  comm->barrier();

  at::Tensor host = at::ones({4});
  EXPECT_THROW(comm->all_reduce(host, ReduceOp::kSum), std::runtime_error);  // CUDA tensors only
}

TEST(GpuNccl, AllReduceRunsOnItsOwnStream) {
  GF_SKIP_WITHOUT_GPU();
  auto comm = nccl_world_of_one();
  at::Tensor t = at::full({1 << 20}, 2.0, at::TensorOptions().device(kGpu));
  // Queued on the current stream after the all-reduce started: compute it must not wait for.
  auto work = comm->all_reduce_async(t, ReduceOp::kAvg);
  at::cuda::sleep(kBusyCycles);
  EXPECT_TRUE(finishes_before_current_stream(*work)) << "the all-reduce waited for compute queued after it";
  work->wait();
  EXPECT_TRUE(t.cpu().eq(2).all().item<bool>());
}

// Presents a world-of-one NCCL communicator as 2 ranks, so the reducer hooks and buckets as in
// a real job (each bucket is summed over the one real rank, then divided by 2), and keeps the
// work of every all-reduce.
class TwoRankFacade : public Communicator {
 public:
  explicit TwoRankFacade(Communicator& inner) : inner_(inner) {}
  Backend backend() const override { return inner_.backend(); }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void all_reduce(at::Tensor& t, ReduceOp op) override { inner_.all_reduce(t, op); }
  std::shared_ptr<Work> all_reduce_async(at::Tensor t, ReduceOp op) override {
    works.push_back(inner_.all_reduce_async(t, op));
    return works.back();
  }
  void broadcast(at::Tensor& t, int root) override { inner_.broadcast(t, root); }
  at::Tensor all_gather(const at::Tensor& t) override { return inner_.all_gather(t); }
  at::Tensor all_gatherv(const at::Tensor& t) override { return inner_.all_gatherv(t); }
  void barrier() override { inner_.barrier(); }

  std::vector<std::shared_ptr<Work>> works;

 private:
  Communicator& inner_;
};

TEST(GpuNccl, ReducerAllReducesOverlapBackward) {
  GF_SKIP_WITHOUT_GPU();
  auto comm = nccl_world_of_one();
  TwoRankFacade facade(*comm);
  at::manual_seed(3);
  torch::nn::Sequential net(torch::nn::Linear(256, 1024), torch::nn::Linear(1024, 1024), torch::nn::Linear(1024, 1024),
                            torch::nn::Linear(1024, 64));
  net->to(kGpu);
  const at::Tensor x = at::randn({512, 256}, at::TensorOptions().device(kGpu));
  const at::Tensor y = at::randn({512, 64}, at::TensorOptions().device(kGpu));

  // The reference: gradients of one plain backward.
  torch::nn::functional::mse_loss(net->forward(x), y).backward();
  std::vector<at::Tensor> expected;
  for (auto& p : net->parameters()) {
    expected.push_back(p.grad().clone());
    p.mutable_grad().reset();
  }

  GradientReducerOptions options;
  options.bucket_bytes = 4 << 20;  // one bucket per 1024x1024 layer: several buckets
  GradientReducer reducer(facade, net->parameters(), options);
  ASSERT_GE(reducer.num_buckets(), 3);
  // When the second layer's weight gradient arrives (the last layer's bucket has started),
  // backward's stream gets a long kernel: the started all-reduce must not wait for it.
  at::Tensor second = net->parameters()[2];
  second.register_hook([](const at::Tensor&) { at::cuda::sleep(kBusyCycles); });
  torch::nn::functional::mse_loss(net->forward(x), y).backward();
  ASSERT_FALSE(facade.works.empty()) << "no bucket started during backward";
  EXPECT_TRUE(finishes_before_current_stream(*facade.works.front()))
      << "the first bucket's all-reduce waited for backward's later kernels";

  reducer.finalize();
  EXPECT_GE(reducer.last_stats().launched_in_backward, 1);
  const auto parameters = net->parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const double difference = (parameters[i].grad() * 2 - expected[i]).abs().max().item<double>();
    EXPECT_LE(difference, 1e-5 * (1 + expected[i].abs().max().item<double>())) << "parameter " << i;
  }
}

TEST(GpuNccl, EveryLocalGpuOneRank) {
  GF_SKIP_WITHOUT_GPU();
  const auto gpus = static_cast<int>(visible_gpus().names.size());
  if (gpus < 2) GTEST_SKIP() << "one GPU visible: a job of one rank per GPU needs 2 or more";
  const auto job = gf::test::run_job(gf::test::mpirun(gpus) + GF_DIST_WORKER + std::string(" nccl cuda"));
  EXPECT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("rank 0: nccl ok"), std::string::npos) << job.output;
}

}  // namespace
}  // namespace gf::dist
