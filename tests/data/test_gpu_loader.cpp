// ctest label `gpu`: the loader on a CUDA device. Batches arrive on the GPU equal to the CPU
// loader's, and a batch's pinned host-to-device copy runs while the compute stream is busy
// (at::cuda::sleep keeps it busy): the copy overlaps compute instead of queueing behind it.
#include <ATen/ATen.h>
#include <ATen/cuda/Sleep.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "data/loader.hpp"
#include "data/pack.hpp"
#include "tests/data/data_test_util.hpp"
#include "tests/support/gpu.hpp"

namespace gf::data {
namespace {

// Longer than decoding a batch of six 64 px images (0.5 s at the H200's 1.98 GHz).
constexpr int64_t kBusyCycles = 1'000'000'000;

// A small packed dataset, made once per process in a folder of the first test's own (ctest
// runs the tests of a binary as processes side by side).
const std::string& dataset_dir() {
  static const std::string dir = [] {
    const std::string root =
        test::scratch_dir(std::string("gpu_loader_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    const auto folder = test::write_image_folder(root, 18);
    PackOptions o;
    o.images_dir = folder.images_dir;
    o.labels_csv = folder.labels_csv;
    o.id_column = "image_id";
    o.out_dir = root + "/ds";
    o.resolution = 64;
    o.shard_size = 8;
    o.threads = 2;
    o.show_progress = false;
    pack(o);
    return o.out_dir;
  }();
  return dir;
}

LoaderOptions options(c10::Device device, int prefetch) {
  LoaderOptions o;
  o.dataset_dir = dataset_dir();
  o.split = "all";
  o.global_batch_size = 6;
  o.seed = 5;
  o.img_size = 56;
  o.workers = 2;
  o.prefetch = prefetch;
  o.verify = Verify::kSizes;
  o.device = device;
  return o;
}

std::vector<Batch> epoch(Loader& loader, int64_t e) {
  std::vector<Batch> batches;
  loader.start(e);
  while (auto b = loader.next()) batches.push_back(std::move(*b));
  return batches;
}

TEST(GpuLoader, BatchesArriveOnTheGpuEqualToTheCpuLoaders) {
  GF_SKIP_WITHOUT_GPU();
  Loader cpu(options(c10::kCPU, 2)), gpu(options(c10::Device(c10::kCUDA, 0), 2));
  const auto expected = epoch(cpu, 0);
  const auto got = epoch(gpu, 0);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(got[i].images.is_cuda());
    EXPECT_EQ(got[i].dataset_indices, expected[i].dataset_indices);
    EXPECT_TRUE(got[i].images.cpu().equal(expected[i].images)) << "batch " << i;
  }
}

TEST(GpuLoader, PinnedCopyOverlapsCompute) {
  GF_SKIP_WITHOUT_GPU();
  const c10::Device device(c10::kCUDA, 0);
  // prefetch 1: the next batch is decoded (and copied) only once the current one is taken.
  Loader loader(options(device, 1));
  epoch(loader, 0);  // warm: pinned and device blocks cached, so no allocation synchronises
  c10::cuda::device_synchronize();

  loader.start(1);
  const auto first = loader.next();
  ASSERT_TRUE(first);
  at::cuda::sleep(kBusyCycles);  // the step's compute, while the workers decode the next batch
  const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(0);
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, 0);
  std::optional<Batch> second;
  {
    const c10::cuda::CUDAStreamGuard guard(side);  // the consumer here: waits for the copy only
    second = loader.next();
  }
  ASSERT_TRUE(second);
  side.synchronize();
  EXPECT_FALSE(compute.query()) << "the batch's copy finished only after the compute queued before it";

  Loader cpu(options(c10::kCPU, 1));
  const auto expected = epoch(cpu, 1);
  ASSERT_GE(expected.size(), 2u);
  EXPECT_TRUE(second->images.cpu().equal(expected[1].images));
}

}  // namespace
}  // namespace gf::data
