// `greenfound cost`: prices a planned run before it is submitted. Work comes from the run
// config (architecture, image size, epochs) as analytic FLOPs; hours from an assumed
// utilisation of the GPU's dense bf16 peak, or from a measured training rate (images/s per
// GPU, e.g. scripts/gpu-check.sh's); energy from the board power, or from a measured J/image;
// carbon and money from energy/cost.hpp.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "energy/cost.hpp"
#include "energy/energy_options.hpp"
#include "launcher/commands.hpp"
#include "launcher/config_file.hpp"
#include "model/arch_registry.hpp"
#include "train/run_config.hpp"

namespace gf::launcher {
namespace {

// The published recipe trained on exactly 75,000 images (shared/reference/retfound-green.md).
constexpr double kPublishedImages = 75000;
// Forward passes per training image, in forward-FLOP units: the frozen teacher's forward (1),
// the student's forward (1) and backward (2: gradients of activations and of weights).
// The residual projector (two 384x384 matmuls per token) adds < 1% and is left out.
constexpr double kTrainingForwards = 4.0;

struct CostFlags {
  std::string config;
  std::string gpu;
  int gpus = 1;
  double hours = 0;
  double images = 0;
  double epochs = 0;
  double dataset_images = kPublishedImages;
  double mfu = energy::kDefaultMfu;
  double images_per_s = 0;      // measured per GPU; 0 = assume `mfu`
  double joules_per_image = 0;  // measured GPU energy; 0 = board power x time
  bool json = false;
  std::string gpu_table;
  std::vector<std::string> sets;
};

std::string fixed(double x, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, x);
  return buffer;
}

std::string sci(double x) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.3g", x);
  return buffer;
}

// Three significant digits, plain notation down to 0.001 ("4.15", "0.916", "12.3", "1234").
std::string sig(double x) {
  if (x >= 100) return fixed(x, 0);
  if (x >= 10) return fixed(x, 1);
  if (x >= 0.001 || x == 0) {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.3g", x);
    return buffer;
  }
  return sci(x);
}

std::string money(double usd) { return "$" + fixed(usd, 2); }

// 9000000 → "9,000,000"
std::string grouped(double x) {
  std::string digits = fixed(std::round(x), 0), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void run_cost(const CostFlags& flags) {
  const nlohmann::json json = load_config(flags.config, flags.sets);
  const train::RunConfig config = train::parse_run_config(json, flags.config);
  const energy::EnergyOptions& options = config.energy;
  auto table = energy::gpu_table_for(options);
  if (!flags.gpu_table.empty()) energy::apply_gpu_table_file(table, flags.gpu_table);
  const energy::GpuSpec gpu = energy::require_gpu(table, flags.gpu);

  const model::VitOptions vit = model::arch_options(config.model.arch, config.model.img_size);
  const double forward = model::forward_flops(vit);
  const double per_image = kTrainingForwards * forward;
  const bool measured_rate = flags.images_per_s > 0;
  // FLOP/s per GPU: the measured rate's, or the assumed share of the peak.
  const double sustained = measured_rate ? flags.images_per_s * per_image : gpu.dense_tflops * 1e12 * flags.mfu;
  const double mfu = gpu.dense_tflops > 0 ? sustained / (gpu.dense_tflops * 1e12) : 0;

  // Optimizer steps: a last partial batch per epoch is a step too (the published loader
  // keeps it: 586 steps per epoch of 75,000 at batch 128).
  const double batch = static_cast<double>(config.data.batch_size);
  double images = 0, hours = 0, steps = 0;
  std::string work;
  if (flags.hours > 0) {
    hours = flags.hours;
    images = hours * 3600.0 * sustained * flags.gpus / per_image;
    steps = std::ceil(images / batch);
    work = sig(hours) + " h fit " + grouped(images) + " images (" +
           fixed(images / flags.dataset_images, 1) + " epochs of " + grouped(flags.dataset_images) + ")";
  } else {
    const double epochs = flags.epochs > 0 ? flags.epochs : static_cast<double>(config.optim.epochs);
    images = flags.images > 0 ? flags.images : epochs * flags.dataset_images;
    steps = flags.images > 0 ? std::ceil(images / batch) : epochs * std::ceil(flags.dataset_images / batch);
    hours = measured_rate ? energy::hours_for_images(images, flags.images_per_s, flags.gpus)
                          : energy::hours_for_flops(images * per_image, gpu, flags.gpus, flags.mfu);
    work = flags.images > 0 ? grouped(images) + " images"
                            : fixed(epochs, 0) + " epochs x " + grouped(flags.dataset_images) + " images = " +
                                  grouped(images) + " images";
    work += " = " + sci(images * per_image) + " FLOPs";
  }
  const bool measured_energy = flags.joules_per_image > 0;
  const double joules = measured_energy ? flags.joules_per_image * images : -1.0;
  const energy::Estimate estimate = energy::estimate_run({gpu, flags.gpus, hours, joules}, options);
  const energy::Bill& bill = estimate.bill;

  if (flags.json) {
    const nlohmann::json out = {
        {"config", flags.config}, {"arch", config.model.arch}, {"img_size", config.model.img_size},
        {"gpu", gpu.name}, {"gpus", flags.gpus}, {"images", images}, {"steps", steps},
        {"flops_per_image", per_image},
        {"rate", measured_rate ? "measured" : "assumed"}, {"images_per_s_per_gpu", sustained / per_image},
        {"tflops_per_gpu", sustained / 1e12}, {"mfu", mfu},
        {"energy", measured_energy ? "measured" : "board_power"},
        {"hours", hours}, {"gpu_hours", bill.device_hours}, {"kwh", bill.kwh}, {"kwh_x_pue", bill.kwh_x_pue},
        {"co2e_kg", bill.co2e_kg}, {"cost_usd", bill.cost}, {"gpu_cost_usd", bill.device_cost},
        {"energy_cost_usd", bill.energy_cost}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  const std::string throughput =
      measured_rate
          ? "measured   " + sig(flags.images_per_s) + " images/s per GPU = " + fixed(sustained / 1e12, 0) +
                " TFLOPS = " + fixed(mfu * 100, 1) + "% of " + gpu.name + " dense bf16 peak " +
                fixed(gpu.dense_tflops, 0) + " TFLOPS; "
          : "assumed    " + fixed(flags.mfu * 100, 0) + "% of " + gpu.name + " dense bf16 peak " +
                fixed(gpu.dense_tflops, 0) + " TFLOPS = " + fixed(sustained / 1e12, 0) + " TFLOPS per GPU; ";
  const std::string power = measured_energy ? "measured " + sig(flags.joules_per_image) + " J per image"
                                            : fixed(gpu.board_power_w, 0) + " W board power (GPU only, host in PUE)";
  std::cout << "greenfound cost: " << flags.config << " on " << flags.gpus << " x " << gpu.name << "\n"
            << "  model      " << config.model.arch << " at " << config.model.img_size << " px: "
            << fixed(forward / 1e9, 1) << " GFLOP forward per image\n"
            << "  training   " << fixed(kTrainingForwards, 0) << " x forward per image (teacher forward + student "
            << "forward and backward) = " << fixed(per_image / 1e9, 1) << " GFLOP\n"
            << "  work       " << work << ", " << grouped(steps) << " steps of " << config.data.batch_size << "\n"
            << "  " << throughput << power << "; " << money(estimate.device_price_per_hour) << "/GPU-h\n"
            << "             PUE " << fixed(options.pue, 2) << ", " << fixed(options.carbon_g_per_kwh, 0)
            << " g CO2e/kWh, $" << fixed(options.energy_price_per_kwh, 2) << "/kWh\n"
            << "  time       " << sig(hours) << " h wall, " << sig(bill.device_hours) << " GPU-hours\n"
            << "  energy     " << sig(bill.kwh) << " kWh (x PUE " << fixed(options.pue, 2) << " = "
            << sig(bill.kwh_x_pue) << " kWh)\n"
            << "  carbon     " << sig(bill.co2e_kg) << " kg CO2e\n"
            << "  cost       " << money(bill.cost) << " = " << money(bill.device_cost) << " GPU time + "
            << money(bill.energy_cost) << " energy\n"
            << "  published  RETFound-Green \"less than $100\" (RETFound-MEH $10,000, DERETFound $14,000)\n";
}

}  // namespace

void setup_cost(CLI::App& sub) {
  auto flags = std::make_shared<CostFlags>();
  sub.add_option("--config", flags->config, "Run config (configs/paper.json)")->required();
  sub.add_option("--gpu", flags->gpu, "GPU model: A100, H100, H200, V100, RTX A6000, RTX 4090, or a --gpu-table row")
      ->required();
  sub.add_option("--gpus", flags->gpus, "Number of GPUs")->check(CLI::PositiveNumber);
  auto* hours = sub.add_option("--hours", flags->hours, "Wall-clock hours of the run")->check(CLI::PositiveNumber);
  auto* images = sub.add_option("--images", flags->images, "Training images to process")->check(CLI::PositiveNumber);
  auto* epochs = sub.add_option("--epochs", flags->epochs, "Epochs (default: the config's optim.epochs)")
                     ->check(CLI::PositiveNumber);
  hours->excludes(images)->excludes(epochs);
  images->excludes(epochs);
  sub.add_option("--dataset-images", flags->dataset_images, "Images per epoch (default: the published 75,000)")
      ->check(CLI::PositiveNumber);
  auto* mfu = sub.add_option("--mfu", flags->mfu, "Assumed utilisation of the dense bf16 peak (default 0.35)")
                  ->check(CLI::Range(0.01, 1.0));
  sub.add_option("--images-per-s", flags->images_per_s,
                 "Measured training images/s per GPU (pretrain's images_per_s / GPUs, or gpu-check's); replaces --mfu")
      ->check(CLI::PositiveNumber)
      ->excludes(mfu);
  sub.add_option("--joules-per-image", flags->joules_per_image,
                 "Measured GPU energy per training image (energy.json, gpu-check); replaces board power x time")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--json", flags->json, "Print one JSON object instead of the table");
  sub.add_option("--gpu-table", flags->gpu_table,
                 "JSON {\"NAME\": {\"board_power_w\", \"price_per_hour\", \"dense_tflops\"}} overriding or adding GPUs");
  sub.add_option("--set", flags->sets, "Override a config field: section.key=value (repeatable), e.g. energy.pue=1.2");
  sub.callback([flags] { run_cost(*flags); });
}

}  // namespace gf::launcher
