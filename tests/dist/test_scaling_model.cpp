// The analytic step-time model of `greenfound scaling`: how its terms respond to nodes,
// bandwidth and overlap (the README's table and figure come from it).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "dist/scaling_model.hpp"

namespace {

using gf::dist::ScalingInput;
using gf::dist::step_time;

ScalingInput vit_s_like() {
  ScalingInput in;
  in.flops_per_image = 181e9;
  in.global_batch = 128;
  in.gradient_bytes = 88e6;
  in.peak_flops = 989e12;
  in.network_bandwidth = 12.5e9;  // 100 Gb/s
  in.latency_s = 0;
  return in;
}

TEST(ScalingModel, OneGpuIsAllCompute) {
  const auto t = step_time(vit_s_like(), 1, 1);
  EXPECT_DOUBLE_EQ(t.allreduce_s, 0);
  EXPECT_DOUBLE_EQ(t.exposed_s, 0);
  EXPECT_NEAR(t.compute_s, 128 * 181e9 / (0.35 * 989e12), 1e-12);
  EXPECT_DOUBLE_EQ(t.efficiency, 1);
  EXPECT_NEAR(t.images_per_s, 128 / t.step_s, 1e-9);
}

TEST(ScalingModel, TermsFollowNodesBandwidthAndOverlap) {
  ScalingInput in = vit_s_like();
  const auto one = step_time(in, 1, 8), two = step_time(in, 2, 8), four = step_time(in, 4, 8);
  // Compute halves with the GPUs (same global batch); inside one node nothing crosses the network.
  EXPECT_NEAR(two.compute_s, one.compute_s / 2, 1e-12);
  EXPECT_NEAR(one.allreduce_s, 2 * 7.0 / 8 * 88e6 / 300e9, 1e-12);
  // Across nodes the ring moves 2(N-1)/N of the gradients per node: 1x at 2 nodes, 1.5x at 4.
  const double net2 = two.allreduce_s - one.allreduce_s, net4 = four.allreduce_s - one.allreduce_s;
  EXPECT_NEAR(net4 / net2, 1.5, 1e-9);
  in.network_bandwidth *= 2;
  EXPECT_NEAR(step_time(in, 2, 8).allreduce_s - one.allreduce_s, net2 / 2, 1e-12);
  // Overlap hides at most backward's share of compute; the last bucket always shows.
  for (const auto& t : {one, two, four}) {
    EXPECT_NEAR(t.step_s, t.compute_s + t.exposed_s, 1e-15);
    EXPECT_GE(t.exposed_s, t.allreduce_s * 25e6 / 88e6 - 1e-15);
    EXPECT_GE(t.exposed_s, t.allreduce_s - 0.5 * t.compute_s - 1e-15);
    EXPECT_LE(t.exposed_s, t.allreduce_s);
  }
  in.overlap = 0;
  EXPECT_NEAR(step_time(in, 2, 8).exposed_s, step_time(in, 2, 8).allreduce_s, 1e-15);
}

TEST(ScalingModel, RefusesGpusWithoutAnImage) {
  ScalingInput in = vit_s_like();
  EXPECT_NO_THROW(step_time(in, 16, 8));
  EXPECT_THROW(step_time(in, 17, 8), std::runtime_error);
  in.network_bandwidth = 0;
  EXPECT_THROW(step_time(in, 2, 8), std::runtime_error);
}

}  // namespace
