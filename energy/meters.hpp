#pragma once
// Energy meters (internal to energy/): each one reports, per device it covers, the joules
// used since it was opened. Backends: RAPL powercap sysfs, NVML (dlopen'ed at run time), and
// the estimated CPU-time / GPU-time fallbacks. The tracker samples them from one thread.
#include <memory>
#include <string>
#include <vector>

#include "energy/tracker.hpp"

namespace gf::energy {

struct MeterReading {
  std::string device;   // "package-0", "dram-0", "gpu0" (NVML index), "cpu-process", ...
  std::string id;       // unique per physical device on a host (GPU UUID, zone path)
  Domain domain = Domain::kPackage;
  double joules = 0.0;  // since the meter was opened
  Label label = Label::kMeasured;
};

class Meter {
 public:
  virtual ~Meter() = default;
  // Same devices in the same order on every call. Called from one thread at a time.
  virtual std::vector<MeterReading> read() = 0;
};

// RAPL package-N and dram zones under `root` (normally /sys/class/powercap). nullptr when no
// such zone is readable (absent, or energy_uj root-only). Counters are unwrapped with
// max_energy_range_uj, so reads must come faster than one wrap period.
std::unique_ptr<Meter> open_rapl_meter(const std::string& root);
// The powercap root: $GREENFOUND_POWERCAP_ROOT, else /sys/class/powercap.
std::string powercap_root();

// NVML library to dlopen: $GREENFOUND_NVML_LIB, else libnvidia-ml.so.1.
std::string nvml_library_path();

// The GPUs this rank drives (see EnergyOptions::gpu_ids): explicit ids, else visible entry
// (local_rank × per_rank + j) mod count for j < per_rank, the visible entries being
// CUDA_VISIBLE_DEVICES or, when unset, NVML's 0..nvml_count-1 (when NVML sees nothing
// either, plain indices local_rank × per_rank + j).
std::vector<std::string> select_gpus(const EnergyOptions& options, int local_rank, int nvml_count);

// Opens NVML and the given GPUs. Returns nullptr when the library or a device cannot be
// opened (`why` says which); a GPU without the total-energy counter is power-sampled.
// `name` gets the first GPU's name as NVML reports it ("NVIDIA A100-SXM4-80GB").
std::unique_ptr<Meter> open_nvml_meter(const std::vector<std::string>& devices, std::string* why,
                                       std::string* name);
// The number of GPUs NVML sees (0 when NVML cannot be loaded).
struct NvmlProbe {
  bool loaded = false;
  int count = 0;
  std::string error;
};
NvmlProbe probe_nvml();

// Estimated: this process's CPU seconds (user + system, all threads) × tdp / cores.
std::unique_ptr<Meter> open_cpu_time_meter(double tdp_w, int cores);
// Estimated: wall seconds × board power, for each of `devices` (ids of the GPUs driven).
std::unique_ptr<Meter> open_gpu_time_meter(const std::vector<std::string>& devices, double board_power_w);

}  // namespace gf::energy
