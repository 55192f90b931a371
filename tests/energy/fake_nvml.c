/* A stand-in for libnvidia-ml.so.1 with the entry points greenfound calls, loaded through
 * GREENFOUND_NVML_LIB. Four GPUs; GPU k draws a constant (k + 1) x 100 W since nvmlInit_v2,
 * exposed as a total-energy counter (mJ) or, with FAKE_NVML_NO_ENERGY=1, only as power (mW).
 * fake_nvml_energy_queries(k) counts the energy/power queries of GPU k. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_GPUS 4
#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NOT_FOUND 6

typedef struct FakeDevice {
  unsigned int index;
} FakeDevice;

static FakeDevice devices[FAKE_GPUS] = {{0}, {1}, {2}, {3}};
static double start_s;
static int queries[FAKE_GPUS];

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double watts(const FakeDevice* d) { return 100.0 * (d->index + 1); }

int fake_nvml_energy_queries(unsigned int index) { return index < FAKE_GPUS ? queries[index] : -1; }

int nvmlInit_v2(void) {
  if (start_s == 0.0) start_s = now_s(); /* counters run from the first init, as a driver's do */
  return NVML_SUCCESS;
}

int nvmlShutdown(void) { return NVML_SUCCESS; }

const char* nvmlErrorString(int status) { return status == NVML_ERROR_NOT_SUPPORTED ? "Not Supported" : "fake NVML error"; }

int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = FAKE_GPUS;
  return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, FakeDevice** device) {
  if (index >= FAKE_GPUS) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &devices[index];
  return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByUUID(const char* uuid, FakeDevice** device) {
  char name[32];
  for (unsigned int i = 0; i < FAKE_GPUS; ++i) {
    snprintf(name, sizeof(name), "GPU-fake-%04u", i);
    if (strcmp(name, uuid) == 0) {
      *device = &devices[i];
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

int nvmlDeviceGetIndex(FakeDevice* device, unsigned int* index) {
  *index = device->index;
  return NVML_SUCCESS;
}

int nvmlDeviceGetUUID(FakeDevice* device, char* uuid, unsigned int length) {
  snprintf(uuid, length, "GPU-fake-%04u", device->index);
  return NVML_SUCCESS;
}

int nvmlDeviceGetName(FakeDevice* device, char* name, unsigned int length) {
  snprintf(name, length, "NVIDIA A100-SXM4-80GB");
  return NVML_SUCCESS;
}

int nvmlDeviceGetTotalEnergyConsumption(FakeDevice* device, unsigned long long* energy_mj) {
  const char* off = getenv("FAKE_NVML_NO_ENERGY");
  if (off && strcmp(off, "1") == 0) return NVML_ERROR_NOT_SUPPORTED;
  ++queries[device->index];
  *energy_mj = (unsigned long long)(watts(device) * (now_s() - start_s) * 1000.0);
  return NVML_SUCCESS;
}

int nvmlDeviceGetPowerUsage(FakeDevice* device, unsigned int* power_mw) {
  ++queries[device->index];
  *power_mw = (unsigned int)(watts(device) * 1000.0);
  return NVML_SUCCESS;
}
