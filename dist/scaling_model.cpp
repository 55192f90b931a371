#include "dist/scaling_model.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace gf::dist {

StepTime step_time(const ScalingInput& in, int nodes, int gpus_per_node) {
  if (nodes < 1 || gpus_per_node < 1)
    throw std::runtime_error("scaling: nodes and GPUs per node: found " + std::to_string(nodes) + " x " +
                             std::to_string(gpus_per_node) + ", expected at least 1 x 1");
  if (!(in.flops_per_image > 0 && in.peak_flops > 0 && in.utilisation > 0 && in.gradient_bytes > 0 &&
        in.node_bandwidth > 0 && in.network_bandwidth > 0 && in.bucket_bytes > 0))
    throw std::runtime_error("scaling: FLOPs, peak, utilisation, gradient bytes, bucket and bandwidths must be positive");
  const double gpus = static_cast<double>(nodes) * gpus_per_node;
  if (static_cast<double>(in.global_batch) < gpus)
    throw std::runtime_error("scaling: global batch " + std::to_string(in.global_batch) + " on " +
                             std::to_string(static_cast<int64_t>(gpus)) + " GPUs leaves GPUs without an image");
  const double g = gpus_per_node, n = nodes;
  StepTime t;
  const double per_gpu_compute = in.flops_per_image / (in.utilisation * in.peak_flops);
  t.compute_s = static_cast<double>(in.global_batch) / gpus * per_gpu_compute;
  t.allreduce_s = 2 * (g - 1) / g * in.gradient_bytes / in.node_bandwidth +
                  2 * (n - 1) / n * in.gradient_bytes / in.network_bandwidth + in.latency_s * (2 * (g - 1) + 2 * (n - 1));
  const double last_bucket = t.allreduce_s * std::min(1.0, in.bucket_bytes / in.gradient_bytes);
  t.exposed_s = gpus > 1 ? std::max(t.allreduce_s - in.overlap * t.compute_s, last_bucket) : 0.0;
  t.step_s = t.compute_s + t.exposed_s;
  t.images_per_s = static_cast<double>(in.global_batch) / t.step_s;
  t.efficiency = static_cast<double>(in.global_batch) * per_gpu_compute / gpus / t.step_s;
  return t;
}

}  // namespace gf::dist
