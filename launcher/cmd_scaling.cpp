// `greenfound scaling`: the analytic step time of a run on 1..N nodes (dist/scaling_model.hpp):
// compute from the model's FLOPs and an assumed utilisation, the gradient all-reduce over
// NVLink inside a node and the given network between nodes, and what overlap with backward
// hides. A table, and with --svg a figure of step time against nodes per model and network.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dist/scaling_model.hpp"
#include "energy/cost.hpp"
#include "energy/energy_options.hpp"
#include "launcher/commands.hpp"
#include "launcher/config_file.hpp"
#include "launcher/report_svg.hpp"
#include "model/arch_registry.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {
namespace {

// Forward passes per training image, as `greenfound cost` counts them: teacher forward (1),
// student forward (1) and backward (2).
constexpr double kTrainingForwards = 4.0;

struct ScalingFlags {
  std::string config;
  std::vector<std::string> archs{"vit_small_patch14_reg4", "vit_large_patch14_reg4"};
  std::string gpu = "H100";
  double mfu = energy::kDefaultMfu;
  int gpus_per_node = 8;
  std::vector<int> nodes{1, 2, 4, 8, 16};
  std::vector<double> network_gbps{100, 400, 3200};
  double nvlink_gbs = 300;
  std::string svg;
  std::vector<std::string> sets;
};

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), pattern, value);
  return buffer;
}

std::string network_name(double gbps) { return gbps >= 1000 ? format("%.1f Tb/s", gbps / 1000) : format("%.0f Gb/s", gbps); }

void run_scaling(const ScalingFlags& flags) {
  const nlohmann::json json = load_config(flags.config, flags.sets);
  const train::RunConfig config = train::parse_run_config(json, flags.config);
  const auto table = energy::gpu_table_for(config.energy);
  const energy::GpuSpec gpu = energy::require_gpu(table, flags.gpu);

  std::cout << "greenfound scaling: one optimizer step of global batch " << config.data.batch_size << " at "
            << config.model.img_size << " px on N nodes x " << flags.gpus_per_node << " " << gpu.name << " ("
            << format("%.0f", gpu.dense_tflops) << " TFLOPS bf16 dense, " << format("%.0f", flags.mfu * 100)
            << "% assumed), NVLink " << format("%.0f", flags.nvlink_gbs) << " GB/s per GPU, fp32 gradients in "
            << format("%.0f", config.dist.bucket_mb) << " MB buckets\n";
  std::printf("%-24s %-10s %5s %5s %7s %10s %11s %10s %9s %9s %6s\n", "model", "network", "nodes", "GPUs", "img/GPU",
              "compute ms", "allreduce ms", "exposed ms", "step ms", "images/s", "eff.");
  std::vector<std::string> plots;
  for (const auto& arch : flags.archs) {
    const model::VitOptions vit = model::arch_options(arch, config.model.img_size);
    dist::ScalingInput input;
    input.flops_per_image = kTrainingForwards * model::forward_flops(vit);
    input.global_batch = config.data.batch_size;
    // The encoder and the projector's two D x D matrices, all-reduced as fp32.
    const double parameters = static_cast<double>(model::parameter_count(vit)) + 2.0 * vit.embed_dim * vit.embed_dim;
    input.gradient_bytes = 4 * parameters;
    input.bucket_bytes = config.dist.bucket_mb * 1e6;
    input.peak_flops = gpu.dense_tflops * 1e12;
    input.utilisation = flags.mfu;
    input.node_bandwidth = flags.nvlink_gbs * 1e9;
    std::vector<Series> series;
    Series compute{"compute only", {}, {}};
    for (double gbps : flags.network_gbps) {
      input.network_bandwidth = gbps * 1e9 / 8;
      Series line{network_name(gbps), {}, {}};
      for (int nodes : flags.nodes) {
        if (static_cast<int64_t>(nodes) * flags.gpus_per_node > input.global_batch) continue;  // a GPU without an image
        const dist::StepTime t = dist::step_time(input, nodes, flags.gpus_per_node);
        std::printf("%-24s %-10s %5d %5d %7.1f %10.2f %11.2f %10.2f %9.2f %9.0f %5.0f%%\n", arch.c_str(),
                    network_name(gbps).c_str(), nodes, nodes * flags.gpus_per_node,
                    static_cast<double>(input.global_batch) / (nodes * flags.gpus_per_node), t.compute_s * 1e3,
                    t.allreduce_s * 1e3, t.exposed_s * 1e3, t.step_s * 1e3, t.images_per_s, t.efficiency * 100);
        line.x.push_back(nodes);
        line.y.push_back(t.step_s * 1e3);
        if (series.empty()) {  // compute does not depend on the network: once
          compute.x.push_back(nodes);
          compute.y.push_back(t.compute_s * 1e3);
        }
      }
      series.push_back(std::move(line));
    }
    series.push_back(std::move(compute));
    std::ostringstream title;
    title << arch << ": step time (" << format("%.0f", parameters / 1e6) << " M parameters, "
          << format("%.0f", input.flops_per_image / 1e9) << " GFLOP/image)";
    plots.push_back(line_plot(title.str(), series, {"nodes (x" + std::to_string(flags.gpus_per_node) + " GPUs)", false},
                              {"ms per step (log)", true}));
  }
  if (!flags.svg.empty()) {
    std::ofstream out(flags.svg);
    out << standalone_svg(plots);
    if (!out) throw std::runtime_error(flags.svg + ": cannot write the figure");
    std::cout << "figure: " << flags.svg << "\n";
  }
}

}  // namespace

void setup_scaling(CLI::App& sub) {
  auto flags = std::make_shared<ScalingFlags>();
  sub.add_option("--config", flags->config, "Run config: image size, global batch, bucket size (configs/paper.json)")->required();
  sub.add_option("--archs", flags->archs, "Models to compare")->delimiter(',');
  sub.add_option("--gpu", flags->gpu, "GPU model of the `cost` table (peak bf16 FLOPs)");
  sub.add_option("--mfu", flags->mfu, "Assumed utilisation of the dense bf16 peak")->check(CLI::Range(0.01, 1.0));
  sub.add_option("--gpus-per-node", flags->gpus_per_node, "GPUs per node (one rank each)")->check(CLI::PositiveNumber);
  sub.add_option("--nodes", flags->nodes, "Node counts, e.g. 1,2,4,8,16")->delimiter(',')->check(CLI::PositiveNumber);
  sub.add_option("--network-gbps", flags->network_gbps, "Network bandwidth per node between nodes, Gb/s (all its NICs)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  sub.add_option("--nvlink-gbs", flags->nvlink_gbs, "All-reduce bus bandwidth per GPU inside a node, GB/s")->check(CLI::PositiveNumber);
  sub.add_option("--svg", flags->svg, "Write the figure (step time vs nodes) to this SVG file");
  sub.add_option("--set", flags->sets, "Override a config field: section.key=value (repeatable)");
  sub.callback([flags] { run_scaling(*flags); });
}

}  // namespace gf::launcher
