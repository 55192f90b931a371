#include "dist/device.hpp"

#include <ATen/detail/CUDAHooksInterface.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <torch/version.h>

#include <stdexcept>

namespace gf::dist {
namespace {

// CUDA's encoding (major * 1000 + minor * 10) as "13.0".
std::string cuda_version_text(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

}  // namespace

GpuVisibility visible_gpus() {
  GpuVisibility visibility;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky: later CUDA calls must not see it
    visibility.why_none = cudaGetErrorString(status);
    return visibility;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp properties{};
    visibility.names.push_back(cudaGetDeviceProperties(&properties, i) == cudaSuccess ? properties.name
                                                                                      : "GPU " + std::to_string(i));
  }
  if (count == 0) visibility.why_none = "the CUDA runtime reports 0 devices";
  return visibility;
}

c10::Device select_device(const std::string& name, const World& world, const std::string& field) {
  if (name != "cpu" && name != "cuda" && name != "auto")
    throw std::runtime_error(field + ": found \"" + name + "\", expected cpu, cuda or auto");
  if (name == "cpu") return c10::kCPU;
  const GpuVisibility gpus = visible_gpus();
  if (gpus.names.empty()) {
    if (name == "auto") return c10::kCPU;
    throw std::runtime_error(field + ": found \"cuda\", but no GPU is visible (" + gpus.why_none + ")");
  }
  const auto count = static_cast<int>(gpus.names.size());
  return {c10::kCUDA, static_cast<c10::DeviceIndex>(world.local_rank % count)};
}

RuntimeVersions runtime_versions() {
  RuntimeVersions versions;
  versions.libtorch = TORCH_VERSION;
  int version = 0;
  if (cudaRuntimeGetVersion(&version) == cudaSuccess) versions.cuda_runtime = cuda_version_text(version);
  if (cudaDriverGetVersion(&version) == cudaSuccess && version > 0) versions.cuda_driver = cuda_version_text(version);
  cudaGetLastError();
  try {
    const long cudnn = at::detail::getCUDAHooks().versionRuntimeCuDNN();  // major * 10000 + minor * 100 + patch
    versions.cudnn = std::to_string(cudnn / 10000) + "." + std::to_string(cudnn % 10000 / 100) + "." +
                     std::to_string(cudnn % 100);
  } catch (const std::exception&) {
    versions.cudnn = "";  // a LibTorch without cuDNN
  }
  if (ncclGetVersion(&version) == ncclSuccess)  // major * 10000 + minor * 100 + patch since NCCL 2.9
    versions.nccl = std::to_string(version / 10000) + "." + std::to_string(version % 10000 / 100) + "." +
                    std::to_string(version % 100);
  versions.mpi = mpi_library_version();
  versions.gpus = visible_gpus();
  return versions;
}

}  // namespace gf::dist
