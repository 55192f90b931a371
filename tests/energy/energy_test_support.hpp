#pragma once
// Shared by the energy tests: the world of one rank of a node, as a tracker sees it.
#include <string>

#include "dist/world.hpp"

namespace gf::energy::testing {

inline dist::World world_of(int local_rank, int local_size, const std::string& host) {
  dist::World world;
  world.local_rank = local_rank;
  world.local_size = local_size;
  world.host = host;
  return world;
}

}  // namespace gf::energy::testing
