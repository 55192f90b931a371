// Ranks on two hosts (network namespaces, MPI over TCP between them): World's per-host local
// rank and size, the sampler over hosts, 2 hosts x 2 ranks training as 1 rank with the same
// global batch, energy counted once per node from each host's own powercap tree, provenance
// naming every host, and elastic resume onto fewer hosts.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "tests/energy/fake_powercap.hpp"
#include "tests/multinode/local_cluster.hpp"
#include "tests/multinode/training_setup.hpp"
#include "tests/support/run_checks.hpp"
#include "tests/support/run_job.hpp"

namespace {

using gf::test::JobResult;
using gf::test::LocalCluster;
using gf::test::run_job;
using nlohmann::json;

class AcrossHosts : public gf::test::ClusterTest {
 protected:
  void SetUp() override { start(2, 0); }
  std::string pretrain(const std::string& config, const std::string& run, const std::string& extra = "") const {
    return "pretrain --config " + config + " --run-dir " + path(run) + " " + extra;
  }
  void run_ok(const std::string& command) {
    const JobResult job = run_job(command);
    ASSERT_EQ(job.exit_code, 0) << command << "\n" << job.output;
  }
};

// mpirun from an Open MPI hostfile: 1 rank on gf-h1, 2 on gf-h2.
TEST_F(AcrossHosts, WorldAndSamplerPerHost) {
  std::ofstream(path("hostfile")) << "gf-h1 slots=1\ngf-h2 slots=2\n";
  const std::string mpirun = std::string(std::getenv("GF_MPIEXEC")) + " --allow-run-as-root -n 3 --hostfile " + path("hostfile") +
                             " --mca plm_rsh_agent '" + LocalCluster::script() + " exec' --mca btl_tcp_if_include " +
                             LocalCluster::kNetwork + " --mca oob_tcp_if_include " + LocalCluster::kNetwork + " " +
                             GF_MULTINODE_WORKER;
  const JobResult world = run_job(mpirun + " world");
  ASSERT_EQ(world.exit_code, 0) << world.output;
  for (const char* line : {"world rank 0 size 3 local 0 of 1 host gf-h1 hosts gf-h1:0 gf-h2:1-2\n",
                           "world rank 1 size 3 local 0 of 2 host gf-h2 hosts gf-h1:0 gf-h2:1-2\n",
                           "world rank 2 size 3 local 1 of 2 host gf-h2 hosts gf-h1:0 gf-h2:1-2\n"})
    EXPECT_NE(world.output.find(line), std::string::npos) << line << "in:\n" << world.output;

  // Global batch 6 over 3 ranks on 2 hosts: 2 full steps and the kept last batch of 4 per epoch
  // (data.drop_last false, as published), every one of the 16 samples once.
  const JobResult sampler = run_job(mpirun + " sampler " + path("dataset") + " 6");
  ASSERT_EQ(sampler.exit_code, 0) << sampler.output;
  EXPECT_NE(sampler.output.find("sampler epoch 0: 16 of 16 samples, each on one rank once, batches as one rank's"), std::string::npos)
      << sampler.output;
  EXPECT_NE(sampler.output.find("sampler epoch 1: 16 of 16 samples"), std::string::npos) << sampler.output;
}

TEST_F(AcrossHosts, TwoHostsTimesTwoRanksTrainAsOneRankAndCountEachNodeOnce) {
  // Each host its own RAPL counters: gf-h1 draws 1 W, gf-h2 1000 W.
  gf::energy::testing::FakePowercap rapl1(1ull << 40, folder_->path().string()), rapl2(1ull << 40, folder_->path().string());
  LocalCluster::set_host_environment(1, "GREENFOUND_POWERCAP_ROOT=" + rapl1.root() + "\n");
  LocalCluster::set_host_environment(2, "GREENFOUND_POWERCAP_ROOT=" + rapl2.root() + "\n");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> uj1{0}, uj2{0};
  std::thread power([&] {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      rapl1.set("intel-rapl:0", uj1 += 20'000);         // 1 W
      rapl2.set("intel-rapl:0", uj2 += 20'000'000);     // 1000 W
    }
  });

  const std::string config = gf::test::write_config(folder_->path().string(), "equal");
  run_ok(bin_ + " " + pretrain(config, "one-step1", "--max-steps 1"));
  run_ok(bin_ + " " + pretrain(config, "one", "--max-steps 6"));
  const std::string launch = LocalCluster::launch(bin_, "gf-h1:2,gf-h2:2");
  const JobResult job = run_job(launch + pretrain(config, "two-by-two", "--max-steps 6"));
  stop = true;
  power.join();
  ASSERT_EQ(job.exit_code, 0) << job.output;
  EXPECT_NE(job.output.find("4 rank(s) × 1 thread(s) on cpu (fp32) on 2 host(s)"), std::string::npos) << job.output;

  // Same per-step losses and, after 6 steps, the same weights as one rank.
  const auto l1 = gf::test::losses(path("one")), l4 = gf::test::losses(path("two-by-two"));
  ASSERT_EQ(l1.size(), 6u);
  ASSERT_EQ(l4.size(), 6u);
  for (const auto& [step, loss] : l1) EXPECT_NEAR(l4.at(step), loss, 1e-5 * std::max(1.0, std::abs(loss))) << "step " << step;
  const double moved = gf::test::weight_difference(path("one"), path("one-step1"));
  const double differ = gf::test::weight_difference(path("one"), path("two-by-two"));
  std::cout << "weights moved " << moved << " after step 1; 1 rank vs 2 hosts x 2 ranks differ by " << differ << std::endl;
  EXPECT_GT(moved, 1e-4);
  EXPECT_LE(differ, 1e-5);

  // energy.json: each node once, its own counter, and the total is their sum.
  const json energy = json::parse(std::ifstream(path("two-by-two") + "/energy.json"));
  ASSERT_EQ(energy.at("nodes").size(), 2u) << energy.dump(1);
  std::map<std::string, json> nodes;
  double sum = 0;
  for (const auto& node : energy["nodes"]) {
    nodes[node.at("host").get<std::string>()] = node;
    sum += node.at("joules").get<double>();
    EXPECT_EQ(node["domains"]["package"]["label"], "measured") << node.dump();
  }
  ASSERT_EQ(nodes.size(), 2u) << "a host is listed twice: " << energy.dump(1);
  ASSERT_TRUE(nodes.count("gf-h1") && nodes.count("gf-h2")) << energy.dump(1);
  EXPECT_NEAR(energy.at("joules").get<double>(), sum, 1e-9 * sum);
  const double h1 = nodes["gf-h1"]["joules"].get<double>(), h2 = nodes["gf-h2"]["joules"].get<double>();
  std::cout << "energy: gf-h1 " << h1 << " J, gf-h2 " << h2 << " J, total " << sum << " J" << std::endl;
  EXPECT_GT(h1, 0);
  EXPECT_LE(h1, uj1 * 1e-6);  // gf-h1 read gf-h1's counter, which never reached what gf-h2 drew
  EXPECT_GT(h2, uj1 * 1e-6);

  // provenance.json: every host with its ranks; nodes/: every host reached the last step.
  const json session = json::parse(std::ifstream(path("two-by-two") + "/provenance.json")).at("sessions").at(0);
  EXPECT_EQ(session.at("ranks"), 4);
  EXPECT_EQ(session.at("hosts"), json::parse(R"([{"host": "gf-h1", "ranks": "0-1", "gpus": ["", ""]},
                                                 {"host": "gf-h2", "ranks": "2-3", "gpus": ["", ""]}])"));
  for (const char* host : {"gf-h1", "gf-h2"}) {
    const json progress = json::parse(std::ifstream(path("two-by-two") + "/nodes/" + host + ".json"));
    EXPECT_EQ(progress.at("step"), 6) << host;
  }
}

// Checkpointed on 2 hosts x 2 ranks, resumed on 1 host x 2 ranks with the same global batch:
// the weights of an uninterrupted 2 x 2 run. Another global batch is refused unless asked for.
TEST_F(AcrossHosts, ElasticResumeOnFewerHosts) {
  const std::string config = gf::test::write_config(folder_->path().string(), "elastic");
  const std::string two_hosts = LocalCluster::launch(bin_, "gf-h1:2,gf-h2:2");
  run_ok(two_hosts + pretrain(config, "whole", "--max-steps 6"));
  run_ok(two_hosts + pretrain(config, "parts", "--max-steps 3"));
  const JobResult resumed = run_job(LocalCluster::launch(bin_, "gf-h1:2") + pretrain(config, "parts", "--resume auto --max-steps 6"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("2 rank(s) × 1 thread(s) on cpu (fp32) on 1 host(s)"), std::string::npos) << resumed.output;
  const double differ = gf::test::weight_difference(path("whole"), path("parts"));
  std::cout << "elastic resume 2x2 -> 1x2: weights differ from the uninterrupted run by " << differ << std::endl;
  EXPECT_LE(differ, 1e-6);
  const auto a = gf::test::losses(path("whole")), b = gf::test::losses(path("parts"));
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (const auto& [step, loss] : a) EXPECT_NEAR(b.at(step), loss, 1e-6 * std::max(1.0, std::abs(loss))) << "step " << step;
  const json sessions = json::parse(std::ifstream(path("parts") + "/provenance.json")).at("sessions");
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].at("hosts").size(), 2u);
  EXPECT_EQ(sessions[1].at("hosts").size(), 1u);

  // Another global batch: refused, naming the field and the way to ask for it.
  const JobResult refused = run_job(bin_ + " " + pretrain(config, "parts", "--resume auto --max-steps 8 --set data.batch_size=8"));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("data.batch_size: 4 vs 8"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--allow-batch-change"), std::string::npos) << refused.output;
  // Asked for: epoch 1 had 2 steps of 4 samples done (steps 5, 6), so it continues at step 1 of 8.
  const JobResult allowed =
      run_job(bin_ + " " + pretrain(config, "parts", "--resume auto --max-steps 8 --set data.batch_size=8 --allow-batch-change"));
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_NE(allowed.output.find("global batch changed from 4 to 8 (--allow-batch-change): epoch 1 continues at sample 8 of the 8 already trained"),
            std::string::npos)
      << allowed.output;
}

}  // namespace
