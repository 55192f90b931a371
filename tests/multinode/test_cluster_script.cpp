// scripts/cluster-local.sh itself: N hosts with their own names and addresses, SLURM seeing N
// nodes, `start` idempotent, `stop` leaving nothing behind (namespaces, links, daemons,
// mounts, spool, config).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/multinode/local_cluster.hpp"

namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::LocalCluster;
using gf::test::run_job;

TEST(ClusterScript, HostsSlurmNodesAndNothingLeftAfterStop) {
  const std::string why = LocalCluster::unavailable();
  if (!why.empty()) GTEST_SKIP() << "SKIPPED: hosts in network namespaces cannot be made here: " << why;
  {
    LocalCluster cluster(3, 0);
    ASSERT_TRUE(cluster.ok()) << cluster.log();
    for (int k = 1; k <= 3; ++k) {
      const JobResult name = run_job("bash " + LocalCluster::script() + " exec " + LocalCluster::host(k) + " hostname");
      EXPECT_EQ(name.output, LocalCluster::host(k) + "\n");
      const JobResult addr = run_job("bash " + LocalCluster::script() + " exec " + LocalCluster::host(k) + " ip -4 -o addr show eth0");
      EXPECT_NE(addr.output.find("10.213.0." + std::to_string(10 + k) + "/24"), std::string::npos) << addr.output;
    }
    // Each host has its own /tmp; the rest of the file system is shared.
    const JobResult tmp = run_job("bash " + LocalCluster::script() + " exec gf-h1 touch /tmp/gf-h1-only && test ! -e /tmp/gf-h1-only");
    EXPECT_EQ(tmp.exit_code, 0) << tmp.output;
    const JobResult nodes = run_job("sinfo -h -N -o '%N %T'");
    EXPECT_EQ(nodes.output, "gf-h1 idle\ngf-h2 idle\ngf-h3 idle\n");
    // Idempotent: nothing is started again.
    const JobResult again = run_job("bash " + LocalCluster::script() + " start --hosts 3");
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_EQ(again.output.find("starting"), std::string::npos) << again.output;
    const JobResult status = run_job("bash " + LocalCluster::script() + " status");
    EXPECT_EQ(status.exit_code, 0) << status.output;
    EXPECT_NE(status.output.find("slurmd on gf-h3: running"), std::string::npos) << status.output;
  }
  // The destructor stopped it: nothing of it is left.
  EXPECT_EQ(run_job("ip netns list | grep -c '^gf-h' || true").output, "0\n");
  EXPECT_EQ(run_job("ip -o link show | grep -c 'gf-' || true").output, "0\n");
  EXPECT_EQ(run_job("grep -c gf-cluster /proc/mounts || true").output, "0\n");
  EXPECT_FALSE(fs::exists("/run/gf-cluster"));
  EXPECT_FALSE(fs::exists("/var/spool/slurm-local"));
  EXPECT_FALSE(fs::exists("/etc/slurm/slurm.conf"));
  EXPECT_TRUE(LocalCluster::processes_anywhere("slurmd").empty());
  EXPECT_TRUE(LocalCluster::processes_anywhere("slurmctld").empty());
}

}  // namespace
