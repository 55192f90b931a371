#include "launcher/rank_prefix.hpp"

#include <cstdlib>

namespace gf::launcher {

std::string rank_prefix() {
  struct Vars { const char* rank; const char* size; };
  for (const Vars& v : {Vars{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, Vars{"SLURM_PROCID", "SLURM_NTASKS"}}) {
    const char* rank = std::getenv(v.rank);
    const char* size = std::getenv(v.size);
    if (rank && size && std::atoi(size) > 1) return std::string("greenfound[rank ") + rank + "]: ";
  }
  return "greenfound: ";
}

}  // namespace gf::launcher
