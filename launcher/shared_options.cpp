#include "launcher/shared_options.hpp"

#include "base/error.hpp"

namespace gf::launcher {

CLI::Option* add_threads_option(CLI::App& sub, int& threads) {
  return sub
      .add_option("--threads", threads,
                  "Threads per process (rank); 0 = OMP_NUM_THREADS when set, else this node's cores shared by its ranks")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

CLI::Option* add_seed_option(CLI::App& sub, uint64_t& seed, const std::string& draws) {
  return sub.add_option("--seed", seed, "Seed of " + draws + " (the same seed gives the same result)")->capture_default_str();
}

CLI::Option* add_seed_option(CLI::App& sub, uint32_t& seed, const std::string& draws) {
  return sub.add_option("--seed", seed, "Seed of " + draws + " (the same seed gives the same result)")->capture_default_str();
}

CLI::Option* add_device_option(CLI::App& sub, std::string& device) {
  return sub.add_option("--device", device, "auto (cuda when visible), cpu, or cuda (GPU = local rank)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
}

CLI::Option* add_backend_option(CLI::App& sub, std::string& backend) {
  return sub.add_option("--backend", backend, "Communicator: auto (NCCL for CUDA tensors, else MPI), mpi or nccl")
      ->check(CLI::IsMember({"auto", "mpi", "nccl"}));
}

CLI::Option* add_no_energy_flag(CLI::App& sub, bool& no_energy) {
  return sub.add_flag("--no-energy", no_energy, "Do not measure energy (no energy.csv / energy.json)");
}

void run_with_flag_names(const FieldFlags& flags, FieldSource source, const std::function<void()>& stage) {
  try {
    stage();
  } catch (const base::FieldError& e) {
    const auto flag = flags.find(e.field());
    if (flag == flags.end()) throw;
    if (source == FieldSource::kFlagsOnly) throw base::FieldError("", flag->second, e.problem());
    throw base::FieldError(e.source(), e.field() + " (" + flag->second + ")", e.problem());
  }
}

}  // namespace gf::launcher
