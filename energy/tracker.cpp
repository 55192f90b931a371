#include "energy/tracker.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "base/atomic_file.hpp"
#include "base/text.hpp"
#include "dist/communicator.hpp"
#include "energy/cost.hpp"
#include "energy/energy_csv.hpp"
#include "energy/meters.hpp"
#include "energy/summary.hpp"

namespace gf::energy {
namespace {

using Clock = std::chrono::steady_clock;

// Every rank's JSON text, in rank order. Bytes travel as float32 (exact below 2^24), the one
// dtype every backend reduces and gathers; on NCCL the tensors go through the current GPU.
std::vector<nlohmann::json> all_gather_json(dist::Communicator* comm, const nlohmann::json& mine) {
  if (!comm || comm->size() == 1) return {mine};
  const std::string text = mine.dump();
  const auto device = comm->backend() == dist::Backend::kNccl ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  at::Tensor bytes = at::empty({static_cast<int64_t>(text.size())}, at::kFloat);
  auto* out = bytes.data_ptr<float>();
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
  const at::Tensor length = at::full({1}, static_cast<float>(text.size()), at::kFloat);
  const at::Tensor lengths = comm->all_gather(length.to(device)).to(at::kCPU).contiguous();
  const at::Tensor all = comm->all_gatherv(bytes.to(device)).to(at::kCPU).contiguous();
  const float* length_of = lengths.data_ptr<float>();
  const float* data = all.data_ptr<float>();
  std::vector<nlohmann::json> records;
  int64_t offset = 0;
  for (int r = 0; r < comm->size(); ++r) {
    const auto n = static_cast<int64_t>(length_of[r]);
    std::string piece(static_cast<size_t>(n), '\0');
    for (int64_t i = 0; i < n; ++i) piece[i] = static_cast<char>(static_cast<unsigned char>(data[offset + i]));
    offset += n;
    records.push_back(nlohmann::json::parse(piece));
  }
  return records;
}

std::string random_uuid() {
  std::random_device device;
  std::mt19937_64 engine((static_cast<uint64_t>(device()) << 32) ^ device());
  std::uniform_int_distribution<int> hex(0, 15);
  std::string id = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (auto& c : id) {
    if (c == 'x') c = "0123456789abcdef"[hex(engine)];
    else if (c == 'y') c = "89ab"[hex(engine) & 3];
  }
  return id;
}

}  // namespace

std::string phase_name(Phase phase) {
  static const char* const kNames[kNumPhases] = {"data", "teacher_forward", "student_forward_backward", "allreduce",
                                                 "optimizer", "checkpoint", "eval", "idle"};
  return kNames[static_cast<int>(phase)];
}

std::string label_name(Label label) { return base::enum_name(label, kLabelNames); }

Label combine_labels(Label a, Label b) {
  if (a == Label::kUnavailable) return b;
  if (b == Label::kUnavailable || a == b) return a;
  return Label::kMixed;
}

std::string domain_name(Domain domain) {
  static const char* const kNames[kNumDomains] = {"package", "dram", "gpu"};
  return kNames[static_cast<int>(domain)];
}

double NodeEnergy::joules() const {
  double total = 0;
  for (const auto& d : domains) total += d.joules;
  return total;
}

struct EnergyTracker::State {
  EnergyOptions options;
  dist::World world;
  dist::Communicator* comm;
  std::string run_dir;

  std::vector<std::unique_ptr<Meter>> meters;
  std::string gpu_name;
  int gpus = 0;
  std::vector<std::string> notes;
  std::array<Label, kNumDomains> labels{};  // of the meters this rank opened

  mutable std::mutex phase_mutex;
  Phase phase = Phase::kIdle;
  Clock::time_point phase_since = Clock::now();
  std::array<double, kNumPhases> phase_seconds{};

  std::thread sampler;
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool stop = false;

  // Sampler state: the sampler thread owns it while it runs, finish() after the join.
  Clock::time_point start_time, last_time;
  std::vector<double> baseline, last;   // per reading: joules at start() and at the last sample
  std::vector<char> counted;            // per reading: 0 when another rank counts this device
  std::array<DomainEnergy, kNumDomains> domains;
  std::array<double, kNumPhases> phase_joules{};
  int csv_fd = -1;
  bool started = false;
  bool finished = false;
  EnergySummary summary;

  std::vector<MeterReading> read_all() {
    std::vector<MeterReading> all;
    for (auto& meter : meters) {
      auto readings = meter->read();
      all.insert(all.end(), readings.begin(), readings.end());
    }
    return all;
  }

  // Seconds each phase was active since the previous call, and restart the count.
  std::array<double, kNumPhases> take_phase_seconds(Clock::time_point now) {
    std::lock_guard<std::mutex> lock(phase_mutex);
    phase_seconds[static_cast<int>(phase)] += std::chrono::duration<double>(now - phase_since).count();
    phase_since = now;
    auto seconds = phase_seconds;
    phase_seconds.fill(0.0);
    return seconds;
  }

  void sample() {
    const auto now = Clock::now();
    const auto readings = read_all();
    const double dt = std::chrono::duration<double>(now - last_time).count();
    last_time = now;
    const auto seconds = take_phase_seconds(now);

    double interval = 0;
    std::string rows;
    const double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (size_t i = 0; i < readings.size(); ++i) {
      if (!counted[i]) continue;
      const auto& r = readings[i];
      const double delta = r.joules - last[i];
      last[i] = r.joules;
      domains[static_cast<int>(r.domain)].joules += delta;
      interval += delta;
      rows += energy_csv_row({wall, world.rank, world.host, r.device, domain_name(r.domain), r.joules - baseline[i],
                              dt > 0 ? delta / dt : 0.0, label_name(r.label)});
    }
    // Split the interval's joules over the phases by the time each was active in it.
    double total_seconds = 0;
    for (double s : seconds) total_seconds += s;
    for (int p = 0; p < kNumPhases; ++p)
      phase_joules[p] += total_seconds > 0 ? interval * seconds[p] / total_seconds
                                           : (p == static_cast<int>(Phase::kIdle) ? interval : 0.0);
    const std::string& text = rows;
    // One append per sample: ranks sharing the file never interleave inside a row.
    if (csv_fd >= 0 && !text.empty() && ::write(csv_fd, text.data(), text.size()) < 0) {
      ::close(csv_fd);
      csv_fd = -1;
      notes.push_back(run_dir + "/energy.csv: write failed, sampling continues without the CSV");
    }
  }

  void loop() {
    const auto period = std::chrono::duration<double>(1.0 / options.sample_hz);
    std::unique_lock<std::mutex> lock(wake_mutex);
    while (!wake.wait_for(lock, period, [this] { return stop; })) {
      lock.unlock();
      sample();
      lock.lock();
    }
  }

  void open_meters() {
    const auto table = gpu_table_for(options);
    // CPU package and DRAM: RAPL read by local rank 0 only (it covers the whole node);
    // the estimate, when RAPL is unreadable, covers each rank's own process.
    if (auto rapl = open_rapl_meter(powercap_root())) {
      if (world.local_rank == 0) meters.push_back(std::move(rapl));
    } else {
      meters.push_back(open_cpu_time_meter(options.cpu_tdp_w, options.cpu_cores));
      notes.push_back("no readable RAPL zone under " + powercap_root() + ": CPU energy estimated from process CPU time x " +
                      std::to_string(static_cast<int>(options.cpu_tdp_w)) + " W TDP per node's cores, DRAM not counted");
    }
    const NvmlProbe nvml = probe_nvml();
    const auto devices = select_gpus(options, world.local_rank, nvml.count);
    if (devices.empty()) return;
    std::string why, nvml_name;
    std::unique_ptr<Meter> meter = nvml.loaded ? open_nvml_meter(devices, &why, &nvml_name) : nullptr;
    if (!nvml.loaded) why = nvml.error;
    gpu_name = options.gpu.empty() ? nvml_name : options.gpu;
    if (meter) {
      meters.push_back(std::move(meter));
      return;
    }
    const GpuSpec* spec = find_gpu(table, gpu_name);
    const double watts = options.gpu_board_power_w >= 0 ? options.gpu_board_power_w : spec ? spec->board_power_w : 300.0;
    meters.push_back(open_gpu_time_meter(devices, watts));
    std::ostringstream note;
    note << "NVML unavailable (" << why << "): GPU energy estimated at " << watts << " W board power";
    notes.push_back(note.str());
  }
};

EnergyTracker::EnergyTracker(EnergyOptions options, dist::World world, dist::Communicator* communicator,
                             std::string run_dir)
    : state_(std::make_unique<State>()) {
  if (world.size > 1 && !communicator)
    throw std::runtime_error("energy tracker: a world of " + std::to_string(world.size) + " ranks needs a communicator");
  state_->options = std::move(options);
  state_->world = std::move(world);
  state_->comm = communicator;
  state_->run_dir = std::move(run_dir);
  state_->open_meters();
  for (const auto& r : state_->read_all())
    state_->labels[static_cast<int>(r.domain)] = combine_labels(state_->labels[static_cast<int>(r.domain)], r.label);
}

EnergyTracker::~EnergyTracker() {
  if (state_->sampler.joinable()) {
    {
      std::lock_guard<std::mutex> lock(state_->wake_mutex);
      state_->stop = true;
    }
    state_->wake.notify_all();
    state_->sampler.join();
  }
  if (state_->csv_fd >= 0) ::close(state_->csv_fd);
}

void EnergyTracker::start() {
  auto& s = *state_;
  if (s.started) throw std::runtime_error("energy tracker: start() called twice");
  s.started = true;
  const std::string csv = s.run_dir + "/energy.csv";
  std::filesystem::create_directories(s.run_dir);
  if (s.world.rank == 0 && !std::filesystem::exists(csv)) base::write_file_atomic(csv, energy_csv_header());

  // A GPU another rank of the same host already counts (two ranks on one GPU) is dropped
  // here so the job counts every device once.
  const auto readings = s.read_all();
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& r : readings) ids.push_back(r.domain == Domain::kGpu ? r.id : "");
  const auto everyone = all_gather_json(s.comm, {{"host", s.world.host}, {"ids", ids}});
  std::set<std::string> taken;
  for (int r = 0; r < s.world.rank; ++r)
    if (everyone[r]["host"] == s.world.host)
      for (const auto& id : everyone[r]["ids"])
        if (!id.get<std::string>().empty()) taken.insert(id.get<std::string>());
  // The baseline is read after the gather, so waiting for other ranks is not counted.
  const auto baseline = s.read_all();
  for (size_t i = 0; i < readings.size(); ++i) {
    const auto& r = readings[i];
    const bool duplicate = r.domain == Domain::kGpu && taken.count(r.id) > 0;
    s.counted.push_back(duplicate ? 0 : 1);
    s.baseline.push_back(baseline[i].joules);
    s.last.push_back(baseline[i].joules);
    if (duplicate) continue;
    auto& domain = s.domains[static_cast<int>(r.domain)];
    domain.label = combine_labels(domain.label, r.label);
    if (r.domain == Domain::kGpu) ++s.gpus;
  }

  s.csv_fd = ::open(csv.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (s.csv_fd < 0) s.notes.push_back(csv + ": cannot be opened for appending, no per-sample rows");
  s.start_time = s.last_time = Clock::now();
  {
    std::lock_guard<std::mutex> lock(s.phase_mutex);
    s.phase_since = s.start_time;
    s.phase_seconds.fill(0.0);
  }
  s.sampler = std::thread([&s] { s.loop(); });
}

void EnergyTracker::set_phase(Phase phase) {
  auto& s = *state_;
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(s.phase_mutex);
  s.phase_seconds[static_cast<int>(s.phase)] += std::chrono::duration<double>(now - s.phase_since).count();
  s.phase_since = now;
  s.phase = phase;
}

Phase EnergyTracker::phase() const {
  std::lock_guard<std::mutex> lock(state_->phase_mutex);
  return state_->phase;
}

std::array<Label, kNumDomains> EnergyTracker::local_labels() const { return state_->labels; }

EnergySummary EnergyTracker::finish(double images, double flops) {
  auto& s = *state_;
  if (!s.started) throw std::runtime_error("energy tracker: finish() before start()");
  if (s.finished) return s.summary;
  {
    std::lock_guard<std::mutex> lock(s.wake_mutex);
    s.stop = true;
  }
  s.wake.notify_all();
  s.sampler.join();
  s.sample();  // the last interval, so totals and phases run to this moment
  if (s.csv_fd >= 0) {
    ::fsync(s.csv_fd);
    ::close(s.csv_fd);
    s.csv_fd = -1;
  }
  s.finished = true;

  RankRecord mine;
  mine.rank = s.world.rank;
  mine.host = s.world.host;
  mine.duration_s = std::chrono::duration<double>(s.last_time - s.start_time).count();
  mine.domains = s.domains;
  mine.phase_joules = s.phase_joules;
  mine.gpus = s.gpus;
  mine.gpu_name = s.gpu_name;
  mine.notes = s.notes;
  std::vector<RankRecord> records;
  for (const auto& json : all_gather_json(s.comm, mine.to_json())) records.push_back(RankRecord::from_json(json));
  s.summary = summarize(records, s.options, images, flops);

  if (s.world.rank == 0) {
    nlohmann::json json = s.summary.to_json();
    base::write_file_atomic(s.run_dir + "/energy.json", json.dump(2) + "\n");
    const RunInfo run{random_uuid(), std::filesystem::path(s.run_dir).filename().string(), base::format_now(base::Zone::kLocal, "%Y-%m-%dT%H:%M:%S")};
    append_emissions_row(s.run_dir + "/emissions.csv", emissions_csv_row(s.summary, s.options, run));
  }
  return s.summary;
}

void EnergyTracker::print_summary(std::ostream& out) const {
  if (state_->finished) gf::energy::print_summary(state_->summary, state_->options, out);
}

}  // namespace gf::energy
