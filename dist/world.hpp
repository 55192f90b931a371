#pragma once
// Rank discovery. MPI is the bootstrap (mpirun, or srun with Open MPI's PMIx): rank, world
// size and the ranks sharing this node come from MPI and are cross-checked against the
// variables of the launcher that started the process (OMPI_COMM_WORLD_*, SLURM_*). A process
// started without a launcher is a world of 1 and does not initialise MPI at all.
#include <optional>
#include <string>
#include <vector>

namespace gf::dist {

// Where one rank runs: its host, its rank on that host and the GPUs the launcher let it see.
struct RankPlace {
  std::string host;
  int local_rank = 0;
  std::string visible_gpus;  // CUDA_VISIBLE_DEVICES as the rank found it ("" = not set)
};

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;   // rank among the processes of this node (the GPU index: one rank per GPU)
  int local_size = 1;   // processes of this job on this node
  std::string host;
  bool uses_mpi = false;  // MPI is initialised (a launcher started the process)
  std::vector<RankPlace> places;  // every rank's place, indexed by rank (the same on every rank)

  bool is_root() const { return rank == 0; }
  // The hosts of the job, each once, in the order of their first rank.
  std::vector<std::string> hosts() const;
  // The ranks on `host`, runs compressed: "0-1", "0,2,5", "0-3,8".
  std::string ranks_on(const std::string& host) const;
};

// Collective on first call: initialises MPI (MPI_THREAD_MULTIPLE) when a launcher started the
// process, discovers the world, cross-checks it (throws on a mismatch) and registers
// MPI_Finalize at exit. Later calls return the same World. Thread-safe.
const World& init_world();

// What the launcher that started this process says, -1 where it says nothing.
struct LauncherView {
  std::string source;  // "Open MPI" | "SLURM"
  int rank = -1;
  int size = -1;
  int local_rank = -1;
  int local_size = -1;
};

// The launcher's view from the environment: OMPI_COMM_WORLD_* when Open MPI started us, else
// SLURM_* inside an srun step (SLURM_STEP_ID set); nullopt for a process started by hand.
std::optional<LauncherView> launcher_view_from_env();

// Throws std::runtime_error printing both views when `launcher` disagrees with `world`.
void cross_check(const World& world, const LauncherView& launcher);

// For the error path of main(): in a multi-rank job, ends every rank now (MPI_Abort with
// exit_code) so the others do not wait on this one in a collective; returns when this
// process is alone or MPI is not running.
void abort_job_if_distributed(int exit_code);

// Ends the whole job with exit_code (MPI_Abort when MPI runs, else _exit). Prints nothing.
[[noreturn]] void abort_job(int exit_code);

// The MPI library's name and version ("Open MPI v4.1.4"); callable before MPI is initialised.
std::string mpi_library_version();

}  // namespace gf::dist
