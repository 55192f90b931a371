#pragma once
// Which device a rank computes on, decided here only, and what this process runs on: the
// library versions and the GPUs it sees (for `greenfound --version` and provenance.json).
// Everything here works on a machine without a GPU or a CUDA driver: no GPU is then visible.
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "dist/world.hpp"

namespace gf::dist {

// A config's device name for this rank: "cpu"; "cuda" = GPU (local rank modulo the visible
// GPUs), one per rank on a node; "auto" = cuda when a GPU is visible, else cpu. `field` names
// the setting in errors ("train.device", "--device").
c10::Device select_device(const std::string& name, const World& world, const std::string& field);

struct GpuVisibility {
  std::vector<std::string> names;  // CUDA order (after CUDA_VISIBLE_DEVICES)
  std::string why_none;            // the CUDA runtime's reason when none is visible
};
// Asks the CUDA runtime directly (no LibTorch warning, no exception).
GpuVisibility visible_gpus();

struct RuntimeVersions {
  std::string libtorch;      // "2.11.0"
  std::string cuda_runtime;  // the CUDA runtime library this process loaded, "13.0"
  std::string cuda_driver;   // the newest CUDA the driver supports, "" without a driver
  std::string cudnn;         // the cuDNN LibTorch loads, "9.19.0"
  std::string nccl;          // "2.28.9"
  std::string mpi;           // "Open MPI v4.1.4"
  GpuVisibility gpus;
};
RuntimeVersions runtime_versions();

}  // namespace gf::dist
