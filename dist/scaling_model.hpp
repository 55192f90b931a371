#pragma once
// An analytic model of one data-parallel training step on N nodes x G GPUs, for planning
// (`greenfound scaling`): how step time splits into compute and gradient all-reduce, and
// how much of the all-reduce hides behind backward.
//
//   compute    = (B / (N G)) x F / (u P)          B global batch, F training FLOPs per image,
//                                                 u utilisation of the GPU's dense peak P
//   all-reduce = 2 (G-1)/G x S / b_node           S gradient bytes: reduce-scatter + all-gather
//              + 2 (N-1)/N x S / b_net            within a node (NVLink, b_node per GPU), and the
//              + latency x (2(G-1) + 2(N-1))      node's shards across nodes (b_net per node, all
//                                                 its NICs) — NCCL's hierarchical ring
//   exposed    = max(all-reduce - overlap x compute, last bucket's share of the all-reduce)
//   step       = compute + exposed
// Buckets are all-reduced as backward produces them (dist/gradient_reducer), so at most the
// backward part of compute (`overlap`) hides communication; the last bucket never does.
#include <cstdint>

namespace gf::dist {

struct ScalingInput {
  double flops_per_image = 0;    // training FLOPs per image (teacher fwd + student fwd + bwd)
  int64_t global_batch = 128;
  double gradient_bytes = 0;     // bytes all-reduced per step (fp32 gradients: 4 x parameters)
  double bucket_bytes = 25e6;    // the reducer's bucket size
  double peak_flops = 0;         // per GPU, dense bf16
  double utilisation = 0.35;
  double overlap = 0.5;          // fraction of compute that is backward (can hide the all-reduce)
  double node_bandwidth = 300e9;  // bytes/s per GPU inside a node (NVLink bus bandwidth)
  double network_bandwidth = 0;   // bytes/s per node between nodes (sum of its NICs)
  double latency_s = 10e-6;       // per ring hop
};

struct StepTime {
  double compute_s = 0;
  double allreduce_s = 0;
  double exposed_s = 0;     // all-reduce not hidden behind backward
  double step_s = 0;
  double images_per_s = 0;
  double efficiency = 0;    // (1-GPU step time / GPUs) / step time: 1 = perfect scaling
};

// Throws for non-positive inputs, and when the global batch gives a GPU less than one image.
StepTime step_time(const ScalingInput& input, int nodes, int gpus_per_node);

}  // namespace gf::dist
