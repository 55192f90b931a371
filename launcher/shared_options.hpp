#pragma once
// Options several subcommands share, declared once here so each flag has one meaning
// wherever it appears, and the mapping from a library's wording (config paths, argument
// names: base::FieldError) back to the flags that set them.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace gf::launcher {

// --threads N: threads of each process (rank); 0 = automatic (base::resolve_threads).
CLI::Option* add_threads_option(CLI::App& sub, int& threads);
// --seed S: the seed of what `draws` names ("the split", "the bootstrap").
CLI::Option* add_seed_option(CLI::App& sub, uint64_t& seed, const std::string& draws);
CLI::Option* add_seed_option(CLI::App& sub, uint32_t& seed, const std::string& draws);
// --device auto|cpu|cuda: cuda is GPU local_rank (modulo the visible GPUs).
CLI::Option* add_device_option(CLI::App& sub, std::string& device);
// --backend auto|mpi|nccl: the communicator (auto: NCCL for CUDA tensors, else MPI).
CLI::Option* add_backend_option(CLI::App& sub, std::string& backend);
// --no-energy: do not measure the stage's energy.
CLI::Option* add_no_energy_flag(CLI::App& sub, bool& no_energy);

// The flag that sets each field a library may name in an error ("out" → "--out",
// "data.path" → "--data").
using FieldFlags = std::map<std::string, std::string>;

// Runs `stage`; a base::FieldError naming a field of `flags` is rethrown worded by that flag:
// "--out: expected ..." (the field came from the command line only), or with the flag beside
// the config path when a config file could have set it too ("data.path (--data): ...").
enum class FieldSource { kFlagsOnly, kConfigOrFlags };
void run_with_flag_names(const FieldFlags& flags, FieldSource source, const std::function<void()>& stage);

}  // namespace gf::launcher
