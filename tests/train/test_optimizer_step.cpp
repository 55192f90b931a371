// One clipped AdamW step with the published parameter groups, against the published code
// (tests/fixtures/token_reconstruction/*/after_step): stored gradients x stored clip
// coefficient through train::Optimizer, compared to 1e-6.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <fstream>

#include "model/arch_registry.hpp"
#include "model/token_reconstruction.hpp"
#include "model/weights.hpp"
#include "tests/support/fixtures.hpp"
#include "train/optimizer.hpp"

namespace gf::train {
namespace {

class OptimizerStep : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimizerStep, ClippedAdamWMatchesPublishedCode) {
  at::set_num_threads(1);
  const std::string dir = test::fixtures_dir() + "/token_reconstruction/" + GetParam();
  model::VitOptions vit = model::arch_options("vit_tiny_patch14_reg4", 56);
  vit.depth = 2;
  model::TokenReconstruction wrapper(model::VisionTransformer(vit), model::TokenReconstructionOptions{});
  wrapper->load_state(model::read_safetensors(dir + "/weights.safetensors").tensors);

  const auto step = test::read_json(dir + "/step.json");
  OptimConfig config;
  config.lr = step.at("optimizer").at("lr").get<double>();
  Optimizer optimizer(wrapper->optimized_parameters(), config);
  optimizer.set_lr(config.lr);
  const double clip_coef = step.at("clip").at("clip_coef").get<double>();

  // Only the stored gradients are set; AdamW skips parameters without one.
  std::vector<std::pair<std::string, torch::Tensor>> checked;
  for (const auto& [name, parameter] : wrapper->state()) {
    if (!std::ifstream(dir + "/grad/" + name + ".bin")) continue;
    parameter.mutable_grad() = test::read_bin(dir + "/grad/" + name) * static_cast<float>(clip_coef);
    checked.emplace_back(name, parameter);
  }
  ASSERT_EQ(checked.size(), 11u);
  const auto before = wrapper->corruption_token().clone();
  optimizer.step();
  for (const auto& [name, parameter] : checked)
    EXPECT_LE(test::max_abs_diff(parameter, test::read_bin(dir + "/after_step/" + name)), 1e-6) << name;
  // Not in the optimizer: unchanged although it has a gradient.
  EXPECT_TRUE(wrapper->corruption_token().equal(before));
  EXPECT_EQ(optimizer.step_count(), 1);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, OptimizerStep, ::testing::Values("case1_token_zero", "case2_token_random"));

TEST(Optimizer, ClipScalesByTheTotalNorm) {
  std::vector<torch::Tensor> parameters = {torch::zeros({2}, torch::requires_grad()),
                                           torch::zeros({1}, torch::requires_grad())};
  parameters[0].mutable_grad() = torch::tensor({3.0f, 0.0f});
  parameters[1].mutable_grad() = torch::tensor({4.0f});
  const ClipResult clip = clip_grad_norm(parameters, 0.1);
  EXPECT_NEAR(clip.total_norm.item<double>(), 5.0, 1e-6);
  EXPECT_NEAR(clip.norms[0].item<double>(), 3.0, 1e-6);
  EXPECT_NEAR(clip.norms[1].item<double>(), 4.0, 1e-6);
  const double coef = 0.1 / (5.0 + 1e-6);
  EXPECT_NEAR(clip.coefficient.item<double>(), coef, 1e-9);
  EXPECT_NEAR(parameters[0].grad()[0].item<double>(), 3.0 * coef, 1e-7);
  EXPECT_NEAR(parameters[1].grad()[0].item<double>(), 4.0 * coef, 1e-7);
  // A small norm is not scaled up.
  parameters[0].mutable_grad() = torch::tensor({0.03f, 0.0f});
  parameters[1].mutable_grad() = torch::tensor({0.04f});
  EXPECT_EQ(clip_grad_norm(parameters, 0.1).coefficient.item<float>(), 1.0f);
  EXPECT_EQ(parameters[1].grad()[0].item<float>(), 0.04f);
}

TEST(Optimizer, StateRoundTripGivesTheSameNextStep) {
  at::set_num_threads(1);
  auto make = [] {
    torch::manual_seed(0);
    return std::vector<std::pair<std::string, torch::Tensor>>{
        {"w", torch::randn({3, 4}).requires_grad_()}, {"b", torch::randn({4}).requires_grad_()}};
  };
  auto a = make(), b = make();
  OptimConfig config;
  config.lr = 1e-2;
  Optimizer first(a, config), second(b, config);
  auto set_grads = [](auto& named, float scale) {
    for (auto& item : named) item.second.mutable_grad() = torch::ones_like(item.second) * scale;
  };
  for (float scale : {1.0f, -0.5f}) {
    set_grads(a, scale);
    first.step();
  }
  // b takes a's state after two steps, then both take the same third step.
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < a.size(); ++i) b[i].second.copy_(a[i].second);
  }
  second.load_state(first.state(), first.step_count(), "test");
  set_grads(a, 0.25f);
  set_grads(b, 0.25f);
  first.step();
  second.step();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
  EXPECT_EQ(second.step_count(), 3);
}

}  // namespace
}  // namespace gf::train
