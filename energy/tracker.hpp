#pragma once
// Job-wide energy accounting of one stage (pretrain, embed, probe). Every rank owns one
// EnergyTracker: start() begins sampling its meters on a thread (rows appended to
// <run_dir>/energy.csv), the stage marks phases with PhaseScope, and finish() (collective:
// every rank calls it) reduces the totals over ranks; rank 0 writes energy.json and appends
// one CodeCarbon-compatible row to emissions.csv.
//
// Typical use (train/):
//   gf::energy::EnergyTracker tracker(options, world, &communicator, run_dir);
//   tracker.start();
//   { gf::energy::PhaseScope scope(tracker, gf::energy::Phase::kData); batch = loader.next(); }
//   ...
//   const auto summary = tracker.finish(images_seen, flops);
//   if (world.rank == 0) tracker.print_summary(std::cout);
#include <array>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/enum_names.hpp"
#include "dist/world.hpp"
#include "energy/energy_options.hpp"

namespace gf::dist {
class Communicator;  // dist/communicator.hpp
}

namespace gf::energy {

enum class Phase {
  kData,
  kTeacherForward,
  kStudentForwardBackward,
  kAllreduce,
  kOptimizer,
  kCheckpoint,
  kEval,
  kIdle,
};
inline constexpr int kNumPhases = 8;
std::string phase_name(Phase phase);  // "data", "teacher_forward", ..., "idle"

// How a reading was obtained. kMixed: a job-wide total made of measured and estimated parts.
enum class Label { kUnavailable, kMeasured, kEstimated, kMixed };
inline constexpr base::EnumName<Label> kLabelNames[] = {{"unavailable", Label::kUnavailable},
                                                        {"measured", Label::kMeasured},
                                                        {"estimated", Label::kEstimated},
                                                        {"mixed", Label::kMixed}};
std::string label_name(Label label);  // "unavailable" | "measured" | "estimated" | "mixed"
Label combine_labels(Label a, Label b);

// Energy domains of energy.json: CPU packages, DRAM, GPUs.
enum class Domain { kPackage, kDram, kGpu };
inline constexpr int kNumDomains = 3;
std::string domain_name(Domain domain);  // "package" | "dram" | "gpu"

struct DomainEnergy {
  double joules = 0.0;
  Label label = Label::kUnavailable;
};

struct NodeEnergy {
  std::string host;
  std::array<DomainEnergy, kNumDomains> domains;  // indexed by Domain
  double joules() const;
};

// Everything energy.json holds; identical on every rank after finish().
struct EnergySummary {
  double duration_s = 0.0;                          // wall time, start() to finish() (max over ranks)
  std::array<DomainEnergy, kNumDomains> domains;    // job-wide, indexed by Domain
  std::vector<NodeEnergy> nodes;                    // one per host, in first-rank order
  double joules = 0.0;                              // sum of the domains
  double kwh = 0.0;
  double kwh_x_pue = 0.0;
  double co2e_kg = 0.0;
  int gpus = 0;                                     // GPUs measured or estimated, job-wide
  double device_hours = 0.0;                        // GPU-hours; rank-hours on CPU-only runs
  double device_price_per_hour = 0.0;               // the price used
  double energy_cost = 0.0;                         // kwh_x_pue × energy price
  double device_cost = 0.0;                         // device_hours × hourly price
  double cost = 0.0;                                // energy_cost + device_cost (USD)
  double images = 0.0;
  double joules_per_image = 0.0;                    // 0 when no images
  double cost_per_image = 0.0;
  double flops = 0.0;                               // analytic, as given to finish()
  std::array<double, kNumPhases> phase_joules{};    // indexed by Phase, sums to joules
  std::string gpu_name;                             // GPU model (NVML's name or options.gpu; "" if none)
  std::vector<std::string> notes;                   // why a domain is estimated or missing
  double pue = 1.0;                                 // the factors the bill used (EnergyOptions)
  double carbon_g_per_kwh = 0.0;
  double energy_price_per_kwh = 0.0;

  nlohmann::json to_json() const;  // energy.json
  // energy.json back; errors are base::FieldErrors naming `source` and the field.
  static EnergySummary from_json(const nlohmann::json& json, const std::string& source);
};

// RUN_DIR/energy.json (nullopt when the file is absent).
std::optional<EnergySummary> read_energy_summary(const std::string& path);

class EnergyTracker {
 public:
  // communicator may be null only when world.size == 1. Meters are opened here (NVML
  // loaded, powercap probed); nothing is written before start().
  EnergyTracker(EnergyOptions options, dist::World world, dist::Communicator* communicator,
                std::string run_dir);
  ~EnergyTracker();  // stops the sampler if finish() was not called (no files written)
  EnergyTracker(const EnergyTracker&) = delete;
  EnergyTracker& operator=(const EnergyTracker&) = delete;

  // Collective. Rank 0 creates energy.csv (header) if absent, then every rank starts its
  // sampler thread.
  void start();
  // Cheap (one mutex, one clock read): joules of each sample interval are split over the
  // phases in proportion to the time each was active in it. Thread-safe.
  void set_phase(Phase phase);
  Phase phase() const;

  // Collective. Takes a last sample, stops the sampler, reduces over ranks, and on rank 0
  // writes energy.json and emissions.csv (temp file, fsync, rename). images: images
  // processed by the whole job; flops: analytic FLOPs of the whole job.
  EnergySummary finish(double images, double flops);

  // A fixed-width table of a summary (prints nothing before finish()).
  void print_summary(std::ostream& out) const;

  // The labels of the meters this rank opened, per domain (kUnavailable: none), for logs and tests.
  std::array<Label, kNumDomains> local_labels() const;

 private:
  struct State;  // energy/tracker.cpp
  std::unique_ptr<State> state_;
};

// Marks a phase for the lifetime of the scope and restores the previous one after.
class PhaseScope {
 public:
  PhaseScope(EnergyTracker& tracker, Phase phase) : tracker_(tracker), previous_(tracker.phase()) {
    tracker_.set_phase(phase);
  }
  ~PhaseScope() { tracker_.set_phase(previous_); }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  EnergyTracker& tracker_;
  Phase previous_;
};

}  // namespace gf::energy
