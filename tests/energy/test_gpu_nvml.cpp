// ctest label `gpu`: the NVML meter on the real driver (not tests/energy/fake_nvml.c): the
// GPU this process computes on is found, its reading is labelled measured, and its energy
// grows while the GPU multiplies matrices, at a power a GPU board can draw.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>

#include <chrono>
#include <iostream>

#include "energy/meters.hpp"
#include "tests/support/gpu.hpp"

namespace gf::energy {
namespace {

TEST(GpuNvml, EnergyCounterGrowsUnderLoad) {
  GF_SKIP_WITHOUT_GPU();
  unsetenv("GREENFOUND_NVML_LIB");  // the driver's libnvidia-ml.so.1
  const NvmlProbe probe = probe_nvml();
  ASSERT_TRUE(probe.loaded) << "a GPU is visible but NVML cannot be loaded: " << probe.error;
  ASSERT_GE(probe.count, 1);
  std::string why, name;
  auto meter = open_nvml_meter(select_gpus(EnergyOptions{}, 0, probe.count), &why, &name);
  ASSERT_TRUE(meter) << why;
  EXPECT_FALSE(name.empty());

  const auto gpu = at::TensorOptions().device(at::kCUDA, 0).dtype(at::kBFloat16);
  const at::Tensor a = at::randn({4096, 4096}, gpu), b = at::randn({4096, 4096}, gpu);
  c10::cuda::device_synchronize();
  const auto before = meter->read();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].label, Label::kMeasured);
  const auto start = std::chrono::steady_clock::now();
  double seconds = 0;
  while (seconds < 2.0) {  // about 2 s of matrix products
    for (int i = 0; i < 50; ++i) at::matmul(a, b);
    c10::cuda::device_synchronize();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const auto after = meter->read();
  const double joules = after[0].joules - before[0].joules;
  const double watts = joules / seconds;
  RecordProperty("gpu", name);
  RecordProperty("watts", std::to_string(watts));
  std::cout << name << ": " << joules << " J in " << seconds << " s = " << watts << " W\n";
  EXPECT_GT(watts, 20.0) << "the energy counter barely moved under load";
  EXPECT_LT(watts, 1500.0) << "more than any GPU board draws";
}

}  // namespace
}  // namespace gf::energy
