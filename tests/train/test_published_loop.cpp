// The published loop, peer-checked: greenfound's Trainer with optim.grad_scaler "published"
// (growth interval 3, so the scale doubles ten times) and "none", 32 steps of a tiny ViT,
// against the same loop in plain PyTorch (tests/train/published_loop.py: timm's ViT class and
// the real GradScaler around a scaled backward) fed greenfound's initial weights, inputs and
// corruption draws. Losses, clip norms and coefficients, scales, final weights and the
// carried token gradient must agree.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/arch_registry.hpp"
#include "model/weights.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/train/run_test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/pretrain.hpp"

namespace gf::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kSteps = 32;
constexpr int64_t kGrowthInterval = 3;

class PublishedLoop : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    temp_ = std::make_unique<gf::test::TempDir>("published-loop");
    root_ = temp_->str();
    test::write_packed_synthetic(root_, 32, 64);
  }
  static void TearDownTestSuite() { temp_.reset(); }

  // vit_tiny (96 wide, 3 blocks) at 56 px, batch 4: 8 steps per epoch, 4 epochs of warmup and
  // cosine at the published lr (5e-5, from 5e-9): the weights move by up to 6e-4, and the two
  // modes end 6e-4 apart. (At lr 1e-3 this random tiny model trains chaotically: the 1-ulp
  // differences between LibTorch's C++ AdamW and Python's grow to 1.6e-5 of the gradient norm
  // by step 30, while the first 8 steps agree bitwise.)
  static RunConfig config(const std::string& mode) {
    json c = {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}, {"init_seed", 3}}},
              {"optim", {{"epochs", 4}, {"warmup_epochs", 1}, {"cosine_epochs", 4},
                         {"grad_scaler", mode}, {"grad_scaler_growth_interval", kGrowthInterval}}},
              {"data", {{"path", root_ + "/dataset"}, {"batch_size", 4}, {"workers", 1}, {"prefetch", 1}}},
              {"train", {{"threads", 1}, {"checkpoint_every_epochs", 0}, {"device", "cpu"}}}};
    return parse_run_config(c, "published_loop");
  }

  static inline std::unique_ptr<gf::test::TempDir> temp_;
  static inline std::string root_;
};

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); }

TEST_P(PublishedLoop, AgreesWithPlainPyTorch) {
  const std::string python = gf::test::python();
  const std::string mode = GetParam();
  const RunConfig run_config = config(mode);
  const std::string dir = root_ + "/" + mode;
  fs::remove_all(dir);
  fs::create_directories(dir + "/peer");

  // Export what entered the objective: the wrapper before step 1, then every step's batch and draws.
  model::NamedTensors init, steps;
  std::vector<int64_t> clean_index;
  PretrainOptions options{dir + "/run", "", kSteps};
  options.on_inputs = [&](const StepInputs& in) {
    if (in.step == 0)
      for (const auto& [name, tensor] : in.wrapper.state()) init.emplace_back(name, tensor.detach().clone());
    const std::string t = std::to_string(in.step);
    steps.emplace_back(t + ".images", in.images.clone());
    steps.emplace_back(t + ".noise", in.draws.noise.clone());
    steps.emplace_back(t + ".ratio", in.draws.ratio_uniform.clone());
    steps.emplace_back(t + ".mask_uniform", in.draws.mask_uniform.clone());
    clean_index.push_back(in.clean_index);
  };
  const PretrainResult result = pretrain(run_config, options);
  ASSERT_EQ(result.step, kSteps);
  std::vector<json> ours;
  for (const MetricsRecord& record : read_metrics(dir + "/run/metrics.jsonl")) ours.push_back(to_json(record));
  ASSERT_EQ(ours.size(), static_cast<size_t>(kSteps));

  json run = {{"timm_kwargs", json::parse(model::timm_kwargs_json(model::arch_options("vit_tiny_patch14_reg4", 56)))},
              {"growth_interval", kGrowthInterval},
              {"clean_index", clean_index}};
  for (const auto& record : ours) run["lr"].push_back(record.at("lr"));
  std::ofstream(dir + "/run.json") << run.dump();
  model::write_safetensors(dir + "/init.safetensors", init);
  model::write_safetensors(dir + "/steps.safetensors", steps);

  const std::string command = python + " " + gf::test::test_script("train", "published_loop.py") + " " + dir + " " + mode +
                              " " + dir + "/peer";
  const test::JobResult peer = test::run_job(command);
  ASSERT_EQ(peer.exit_code, 0) << command << "\n" << peer.output;
  const auto theirs = test::read_json(dir + "/peer/steps.json").at("steps");
  ASSERT_EQ(theirs.size(), static_cast<size_t>(kSteps));

  std::map<std::string, double> worst_step;  // largest relative difference over the steps
  for (size_t t = 0; t < ours.size(); ++t) {
    const json &a = ours[t], &b = theirs[t];
    EXPECT_EQ(a.at("grad_scale").get<double>(), b.at("grad_scale").get<double>()) << "step " << t + 1;
    EXPECT_FALSE(a.at("skipped").get<bool>());
    for (const char* key : {"loss", "grad_norm", "clip_coef"}) {
      const double r = relative(a.at(key).get<double>(), b.at(key).get<double>());
      worst_step[key] = std::max(worst_step[key], r);
      EXPECT_LE(r, 1e-5) << key << ", step " << t + 1;
    }
  }
  std::cout << mode << ": largest relative differences over " << kSteps << " steps: loss " << worst_step["loss"]
            << ", grad_norm " << worst_step["grad_norm"] << ", clip_coef " << worst_step["clip_coef"] << "\n";
  if (mode == "published") {
    // The scale doubled after every third step, and the token's scaled gradient ruled the clip.
    EXPECT_EQ(ours.back().at("grad_scale").get<double>(), 65536.0 * 1024);
    for (const auto& record : ours)
      EXPECT_GT(record.at("grad_norm").get<double>(), 100 * record.at("student_grad_norm").get<double>());
  }

  const std::string checkpoint = latest_checkpoint(dir + "/run");
  const auto weights = model::read_safetensors(checkpoint + "/model.safetensors").tensors;
  const auto peer_final = model::read_safetensors(dir + "/peer/final.safetensors").tensors;
  std::map<std::string, torch::Tensor> expected(peer_final.begin(), peer_final.end());
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, tensor] : weights) {
    ASSERT_EQ(expected.count(name), 1u) << name;
    const double diff = (tensor.to(torch::kDouble) - expected[name].to(torch::kDouble)).abs().max().item<double>();
    if (diff > worst) worst = diff, worst_name = name;
  }
  std::cout << mode << ": largest weight difference " << worst << " (" << worst_name << ")\n";
  EXPECT_LE(worst, 1e-5) << worst_name;
  if (mode == "published") {
    const auto optimizer = model::read_safetensors(checkpoint + "/optimizer.safetensors").tensors;
    torch::Tensor carried;
    for (const auto& [name, tensor] : optimizer)
      if (name == "carried_grad.corruption_token") carried = tensor;
    ASSERT_TRUE(carried.defined());
    const torch::Tensor& peer_grad = expected["corruption_token.grad"];
    EXPECT_LE((carried - peer_grad).abs().max().item<double>(), 1e-5 * peer_grad.abs().max().item<double>());
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PublishedLoop, ::testing::Values("published", "none"));

}  // namespace
}  // namespace gf::train
