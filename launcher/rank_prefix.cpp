#include "launcher/rank_prefix.hpp"

#include "dist/world.hpp"

namespace gf::launcher {

std::string rank_prefix() {
  const auto launcher = dist::launcher_view_from_env();
  if (launcher && launcher->size > 1) return "greenfound[rank " + std::to_string(launcher->rank) + "]: ";
  return "greenfound: ";
}

}  // namespace gf::launcher
