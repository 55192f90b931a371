// NVML, loaded with dlopen at run time so greenfound has no build or link dependency on the
// driver: the total-energy counter (mJ, Volta and newer) where the GPU has it, otherwise the
// board power (mW) integrated between reads.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "energy/meters.hpp"

namespace gf::energy {
namespace {

// The few NVML types and entry points used (nvml.h is not needed to build).
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceOpaque*;
constexpr NvmlReturn kNvmlSuccess = 0;

class NvmlLibrary {
 public:
  // Loads and initialises NVML; check ok() / error().
  NvmlLibrary() {
    const std::string path = nvml_library_path();
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      const char* why = dlerror();
      error_ = path + ": " + (why ? why : "cannot be loaded");
      return;
    }
    if (!bind(init_, "nvmlInit_v2") || !bind(shutdown_, "nvmlShutdown") ||
        !bind(count_, "nvmlDeviceGetCount_v2") || !bind(by_index_, "nvmlDeviceGetHandleByIndex_v2") ||
        !bind(by_uuid_, "nvmlDeviceGetHandleByUUID") || !bind(index_, "nvmlDeviceGetIndex") ||
        !bind(uuid_, "nvmlDeviceGetUUID") || !bind(name_, "nvmlDeviceGetName") ||
        !bind(total_energy_, "nvmlDeviceGetTotalEnergyConsumption") || !bind(power_, "nvmlDeviceGetPowerUsage"))
      return;
    bind(error_string_, "nvmlErrorString");
    const NvmlReturn status = init_();
    if (status != kNvmlSuccess) {
      error_ = path + ": nvmlInit_v2 failed (" + describe(status) + ")";
      return;
    }
    initialised_ = true;
  }
  ~NvmlLibrary() {
    if (initialised_) shutdown_();
    if (handle_) dlclose(handle_);
  }
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  bool ok() const { return initialised_; }
  const std::string& error() const { return error_; }

  std::string describe(NvmlReturn status) const {
    const char* text = error_string_ ? error_string_(status) : nullptr;
    return text ? std::string(text) : "NVML error " + std::to_string(status);
  }

  int count() const {
    unsigned int n = 0;
    return count_(&n) == kNvmlSuccess ? static_cast<int>(n) : 0;
  }
  // `device`: an NVML index ("3") or a GPU UUID ("GPU-8a5f...").
  NvmlReturn open(const std::string& device, NvmlDevice* out) const {
    if (!device.empty() && device.find_first_not_of("0123456789") == std::string::npos)
      return by_index_(static_cast<unsigned int>(std::stoul(device)), out);
    return by_uuid_(device.c_str(), out);
  }
  int index(NvmlDevice device) const {
    unsigned int i = 0;
    return index_(device, &i) == kNvmlSuccess ? static_cast<int>(i) : -1;
  }
  std::string uuid(NvmlDevice device) const { return text(uuid_, device); }
  std::string name(NvmlDevice device) const { return text(name_, device); }
  bool total_energy_mj(NvmlDevice device, double& mj) const {
    unsigned long long value = 0;
    if (total_energy_(device, &value) != kNvmlSuccess) return false;
    mj = static_cast<double>(value);
    return true;
  }
  bool power_mw(NvmlDevice device, double& mw) const {
    unsigned int value = 0;
    if (power_(device, &value) != kNvmlSuccess) return false;
    mw = value;
    return true;
  }

 private:
  template <typename Fn>
  bool bind(Fn*& fn, const char* symbol) {
    fn = reinterpret_cast<Fn*>(dlsym(handle_, symbol));
    if (!fn && error_.empty()) error_ = nvml_library_path() + ": has no symbol " + symbol;
    return fn != nullptr;
  }
  template <typename Fn>
  std::string text(Fn* fn, NvmlDevice device) const {
    char buffer[96] = {};
    return fn(device, buffer, sizeof(buffer)) == kNvmlSuccess ? std::string(buffer) : std::string();
  }

  void* handle_ = nullptr;
  bool initialised_ = false;
  std::string error_;
  NvmlReturn (*init_)() = nullptr;
  NvmlReturn (*shutdown_)() = nullptr;
  NvmlReturn (*count_)(unsigned int*) = nullptr;
  NvmlReturn (*by_index_)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*by_uuid_)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*index_)(NvmlDevice, unsigned int*) = nullptr;
  NvmlReturn (*uuid_)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*name_)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*total_energy_)(NvmlDevice, unsigned long long*) = nullptr;
  NvmlReturn (*power_)(NvmlDevice, unsigned int*) = nullptr;
  const char* (*error_string_)(NvmlReturn) = nullptr;
};

struct Gpu {
  NvmlDevice handle;
  std::string device;   // "gpu<NVML index>"
  std::string uuid;
  bool has_counter;     // total-energy counter; else power is integrated
  double start_mj = 0;  // counter at open
  double last_mw = 0;   // power at the previous read (power-sampled GPUs)
  double joules = 0;    // integrated power (power-sampled GPUs)
};

class NvmlMeter : public Meter {
 public:
  NvmlMeter(std::unique_ptr<NvmlLibrary> library, std::vector<Gpu> gpus)
      : library_(std::move(library)), gpus_(std::move(gpus)), last_(std::chrono::steady_clock::now()) {}

  std::vector<MeterReading> read() override {
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    std::vector<MeterReading> readings;
    for (auto& gpu : gpus_) {
      double joules = gpu.joules;
      if (gpu.has_counter) {
        double mj = 0;
        if (library_->total_energy_mj(gpu.handle, mj)) gpu.joules = (mj - gpu.start_mj) * 1e-3;
        joules = gpu.joules;
      } else {
        double mw = 0;
        if (library_->power_mw(gpu.handle, mw)) {
          gpu.joules += 0.5 * (gpu.last_mw + mw) * 1e-3 * dt;  // trapezoid between reads
          gpu.last_mw = mw;
        }
        joules = gpu.joules;
      }
      readings.push_back({gpu.device, gpu.uuid, Domain::kGpu, joules, Label::kMeasured});
    }
    return readings;
  }

 private:
  std::unique_ptr<NvmlLibrary> library_;
  std::vector<Gpu> gpus_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

std::string nvml_library_path() {
  const char* path = std::getenv("GREENFOUND_NVML_LIB");
  return path && *path ? path : "libnvidia-ml.so.1";
}

NvmlProbe probe_nvml() {
  NvmlProbe probe;
  NvmlLibrary library;
  if (!library.ok()) {
    probe.error = library.error();
    return probe;
  }
  probe.loaded = true;
  probe.count = library.count();
  return probe;
}

std::vector<std::string> select_gpus(const EnergyOptions& options, int local_rank, int nvml_count) {
  std::vector<std::string> selected;
  if (!options.gpu_ids.empty()) {
    for (int id : options.gpu_ids) selected.push_back(std::to_string(id));
    return selected;
  }
  // CUDA numbers the visible devices 0..n-1 in CUDA_VISIBLE_DEVICES order; NVML ignores the
  // variable and numbers all GPUs, so map through it. Set but empty means no GPU.
  std::vector<std::string> visible;
  const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
  if (env) {
    std::string list = env, entry;
    for (size_t start = 0; start <= list.size();) {
      const size_t comma = std::min(list.find(',', start), list.size());
      entry = list.substr(start, comma - start);
      if (!entry.empty()) visible.push_back(entry);
      start = comma + 1;
    }
  } else {
    for (int i = 0; i < nvml_count; ++i) visible.push_back(std::to_string(i));
  }
  const int per_rank = options.gpus_per_rank >= 0 ? options.gpus_per_rank : (visible.empty() ? 0 : 1);
  if (env && visible.empty()) return selected;
  if (visible.empty()) {
    for (int j = 0; j < per_rank; ++j) selected.push_back(std::to_string(local_rank * per_rank + j));
    return selected;
  }
  for (int j = 0; j < per_rank; ++j) {
    const auto& entry = visible[(static_cast<size_t>(local_rank) * per_rank + j) % visible.size()];
    if (std::find(selected.begin(), selected.end(), entry) == selected.end()) selected.push_back(entry);
  }
  return selected;
}

std::unique_ptr<Meter> open_nvml_meter(const std::vector<std::string>& devices, std::string* why,
                                       std::string* name) {
  auto library = std::make_unique<NvmlLibrary>();
  if (!library->ok()) {
    if (why) *why = library->error();
    return nullptr;
  }
  std::vector<Gpu> gpus;
  for (const auto& device : devices) {
    NvmlDevice handle = nullptr;
    const NvmlReturn status = library->open(device, &handle);
    if (status != kNvmlSuccess) {
      if (why) *why = "NVML cannot open GPU " + device + " (" + library->describe(status) + ")";
      return nullptr;
    }
    Gpu gpu{handle, "gpu" + std::to_string(library->index(handle)), library->uuid(handle), false};
    if (gpu.uuid.empty()) gpu.uuid = gpu.device;
    if (name && gpus.empty()) *name = library->name(handle);
    gpu.has_counter = library->total_energy_mj(handle, gpu.start_mj);
    if (!gpu.has_counter) library->power_mw(handle, gpu.last_mw);
    gpus.push_back(gpu);
  }
  return std::make_unique<NvmlMeter>(std::move(library), std::move(gpus));
}

}  // namespace gf::energy
