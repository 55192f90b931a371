// World's view of the job's hosts (filled from every rank at discovery): the hosts in
// first-rank order and each host's ranks, as provenance and node progress print them.
#include <gtest/gtest.h>

#include "dist/world.hpp"

namespace {

gf::dist::World world_of(const std::vector<std::string>& hosts) {
  gf::dist::World world;
  world.size = static_cast<int>(hosts.size());
  for (const auto& host : hosts) world.places.push_back({host, 0, ""});
  return world;
}

TEST(WorldHosts, FirstRankOrderAndCompressedRanks) {
  const auto world = world_of({"n2", "n2", "n1", "n1", "n2", "n3", "n1", "n1"});
  EXPECT_EQ(world.hosts(), (std::vector<std::string>{"n2", "n1", "n3"}));
  EXPECT_EQ(world.ranks_on("n2"), "0-1,4");
  EXPECT_EQ(world.ranks_on("n1"), "2-3,6-7");
  EXPECT_EQ(world.ranks_on("n3"), "5");
  EXPECT_EQ(world.ranks_on("elsewhere"), "");
}

TEST(WorldHosts, ProcessStartedByHandIsItsOwnHost) {
  const gf::dist::World& world = gf::dist::init_world();
  ASSERT_EQ(world.places.size(), 1u);
  EXPECT_EQ(world.places[0].host, world.host);
  EXPECT_EQ(world.hosts(), std::vector<std::string>{world.host});
  EXPECT_EQ(world.ranks_on(world.host), "0");
}

}  // namespace
