// One rank of an energy test job: `mpirun -n 2 energy_worker <run_dir> <seconds>`. Tracks
// energy with the meters the environment points at (fake powercap tree, fake NVML), marks
// phases, and finishes collectively; rank 0 writes energy.json. test_mpi_ranks.cpp checks it.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "dist/communicator.hpp"
#include "dist/world.hpp"
#include "energy/tracker.hpp"

int main(int argc, char** argv) {
  try {
    if (argc != 3) throw std::runtime_error("usage: energy_worker <run_dir> <seconds>");
    const gf::dist::World& world = gf::dist::init_world();
    auto comm = gf::dist::make_communicator(gf::dist::Backend::kMpi, world);
    gf::energy::EnergyOptions options;
    options.sample_hz = 20;
    gf::energy::EnergyTracker tracker(options, world, comm.get(), argv[1]);
    tracker.start();
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::stod(argv[2]));
    while (std::chrono::steady_clock::now() < end) {
      {
        gf::energy::PhaseScope data(tracker, gf::energy::Phase::kData);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      gf::energy::PhaseScope compute(tracker, gf::energy::Phase::kStudentForwardBackward);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    tracker.finish(64.0 * world.size, 1e12);
    if (world.rank == 0) tracker.print_summary(std::cout);
    std::cout << "rank " << world.rank << ": energy worker ok" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "energy_worker: " << e.what() << std::endl;
    gf::dist::abort_job_if_distributed(1);
    return 1;
  }
  return 0;
}
