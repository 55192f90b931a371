// What the published loop's GradScaler does to training (train/grad_scaler.hpp, issue 17): one
// config trained twice through train::pretrain from the same init on the same data, with
// optim.grad_scaler "none" (the baseline) and "published", and per epoch side by side:
//   loss           mean over the epoch's steps
//   |g_student|    mean L2 norm of the optimizer's gradients before clipping
//   S              the loss scale at the epoch's last step
//   S|g_token|     mean L2 norm of the corruption token's gradient of each step, times S
//   clip coef      mean coefficient the clip multiplied every gradient by
//   |dw|/|w|       mean over steps of |w_t - w_t-1| / |w_t-1|, w = the encoder's parameters
//   |w-w0|/|w0|    the encoder's distance from the initial weights after the epoch
// A benchmark, not a greenfound subcommand: it answers one question about the recipe by
// printing figures next to a baseline from the same run, which is what bench/ holds.
//
//   bench_grad_scaler --config configs/paper.json --data DATASET --out DIR [--max-steps N]
//                     [--scalers none,published] [--set section.key=value]...
//                     (e.g. --set optim.grad_scaler_growth_interval=25)
// Writes DIR/none/ and DIR/published/ (run folders) and DIR/summary.json (the table's figures).
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "launcher/config_file.hpp"
#include "train/pretrain.hpp"
#include "train/run_config.hpp"

namespace {

using nlohmann::json;

struct EpochFigures {
  int64_t steps = 0, skipped = 0;
  double loss = 0, student_grad_norm = 0, token_grad_norm = 0, clip_coef = 0, update_ratio = 0;
  double grad_scale = 0, distance = 0, relative_distance = 0;
};

double sum_of_squares(const std::vector<at::Tensor>& norms) {
  double total = 0;
  for (const auto& n : at::stack(norms).to(at::kCPU, at::kDouble).unbind()) total += n.item<double>() * n.item<double>();
  return total;
}

// Trains `config` and returns its figures by epoch.
std::map<int64_t, EpochFigures> run_variant(const gf::train::RunConfig& config, const std::string& run_dir,
                                            int64_t max_steps) {
  std::filesystem::remove_all(run_dir);
  std::vector<at::Tensor> initial, previous;
  std::map<int64_t, EpochFigures> epochs;
  gf::train::PretrainOptions options;
  options.run_dir = run_dir;
  options.max_steps = max_steps;
  options.on_inputs = [&](const gf::train::StepInputs& in) {
    if (in.step != 0 || in.micro != 0) return;
    at::NoGradGuard no_grad;
    for (const auto& p : in.wrapper.student()->parameters()) initial.push_back(p.detach().clone());
    for (const auto& p : initial) previous.push_back(p.clone());
  };
  options.on_step = [&](const gf::train::StepView& view) {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> weights;
    for (const auto& p : view.student.parameters()) weights.push_back(p.detach());
    const double moved = sum_of_squares(at::_foreach_norm(at::_foreach_sub(weights, previous), 2));
    const double before = sum_of_squares(at::_foreach_norm(previous, 2));
    const double from_init = sum_of_squares(at::_foreach_norm(at::_foreach_sub(weights, initial), 2));
    const double init = sum_of_squares(at::_foreach_norm(initial, 2));
    at::_foreach_copy_(previous, weights);

    const gf::train::MetricsRecord& r = view.record;
    EpochFigures& e = epochs[r.epoch];
    e.steps += 1;
    e.skipped += r.skipped ? 1 : 0;
    e.loss += r.loss;
    e.student_grad_norm += r.student_grad_norm;
    e.token_grad_norm += r.token_grad_norm;
    e.clip_coef += r.clip_coef;
    e.update_ratio += std::sqrt(moved / before);
    e.grad_scale = r.grad_scale;
    e.distance = std::sqrt(from_init);
    e.relative_distance = std::sqrt(from_init / init);
  };
  gf::train::pretrain(config, options);
  for (auto& [epoch, e] : epochs) {
    const double n = static_cast<double>(e.steps);
    e.loss /= n, e.student_grad_norm /= n, e.token_grad_norm /= n, e.clip_coef /= n, e.update_ratio /= n;
  }
  return epochs;
}

json to_json(const EpochFigures& e) {
  return {{"steps", e.steps},
          {"skipped", e.skipped},
          {"loss", e.loss},
          {"student_grad_norm", e.student_grad_norm},
          {"grad_scale", e.grad_scale},
          {"token_grad_norm_scaled", e.token_grad_norm},
          {"clip_coef", e.clip_coef},
          {"update_ratio", e.update_ratio},
          {"distance_from_init", e.distance},
          {"relative_distance_from_init", e.relative_distance}};
}

void print_row(const char* variant, int64_t epoch, const EpochFigures& e) {
  std::printf("%5lld  %-9s %10.4g %12.4g %9.3g %12.4g %10.3g %10.3g %12.4g%s\n", static_cast<long long>(epoch + 1),
              variant, e.loss, e.student_grad_norm, e.grad_scale, e.token_grad_norm, e.clip_coef, e.update_ratio,
              e.relative_distance, e.skipped > 0 ? "  (skipped steps)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Training with and without the published loop's GradScaler side effect, from the same init"};
  std::string config_path, data, out;
  int64_t max_steps = 0;
  std::vector<std::string> sets, scalers = {"none", "published"};
  app.add_option("--config", config_path, "Run config (configs/paper.json)")->required();
  app.add_option("--data", data, "Packed dataset folder (overrides data.path)");
  app.add_option("--out", out, "Folder for the two run folders and summary.json")->required();
  app.add_option("--max-steps", max_steps, "Stop each variant after this many optimizer steps (0: every epoch)");
  app.add_option("--scalers", scalers, "Variants to train (a baseline already measured may be left out)")
      ->delimiter(',')
      ->check(CLI::IsMember({"none", "published"}));
  app.add_option("--set", sets, "Override a config field: section.key=value (repeatable)");
  CLI11_PARSE(app, argc, argv);

  try {
    json base = gf::launcher::load_config(config_path, sets);
    if (!data.empty()) base["data"]["path"] = data;
    std::map<std::string, std::map<int64_t, EpochFigures>> results;
    for (const std::string& variant : scalers) {
      json variant_json = base;
      variant_json["optim"]["grad_scaler"] = variant;
      const gf::train::RunConfig config = gf::train::parse_run_config(variant_json, config_path);
      std::cerr << "bench_grad_scaler: training with optim.grad_scaler " << variant << "\n";
      results[variant] = run_variant(config, out + "/" + variant, max_steps);
    }

    const gf::train::RunConfig config = gf::train::parse_run_config(base, config_path);
    std::printf("%s at %lld px, global batch %lld, lr %g, clip %g, growth interval %lld, init scale %g\n",
                config.model.arch.c_str(), static_cast<long long>(config.model.img_size),
                static_cast<long long>(config.data.batch_size), config.optim.lr, config.optim.clip_grad_norm,
                static_cast<long long>(config.optim.grad_scaler_growth_interval), config.optim.grad_scaler_init_scale);
    std::printf("%5s  %-9s %10s %12s %9s %12s %10s %10s %12s\n", "epoch", "scaler", "loss", "|g_student|", "S",
                "S|g_token|", "clip coef", "|dw|/|w|", "|w-w0|/|w0|");
    json summary = {{"config", gf::train::to_json(config)}, {"epochs", json::array()}};
    std::map<int64_t, json> rows;
    for (const auto& [variant, epochs] : results)
      for (const auto& [epoch, figures] : epochs) rows[epoch]["epoch"] = epoch + 1, rows[epoch][variant] = to_json(figures);
    for (const auto& [epoch, row] : rows) {
      const EpochFigures* seen[2] = {nullptr, nullptr};
      int i = 0;
      for (const char* variant : {"none", "published"}) {
        auto v = results.find(variant);
        if (v == results.end() || v->second.count(epoch) == 0) continue;
        seen[i++] = &v->second.at(epoch);
        print_row(variant, epoch, v->second.at(epoch));
      }
      if (i == 2)
        std::printf("%5s  %-9s %10s %12s %9s %12s %10.3g %10.3g %12.4g\n", "", "ratio", "", "", "", "",
                    seen[1]->clip_coef / seen[0]->clip_coef, seen[1]->update_ratio / seen[0]->update_ratio,
                    seen[1]->relative_distance / seen[0]->relative_distance);
      summary["epochs"].push_back(row);
    }
    std::ofstream(out + "/summary.json") << summary.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_grad_scaler: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
