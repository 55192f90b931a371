// The Token Reconstruction objective against the published implementation, run with injected
// draws (tests/fixtures/token_reconstruction, tolerances from its README).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "model/arch_registry.hpp"
#include "model/param_groups.hpp"
#include "model/token_reconstruction.hpp"
#include "model/weights.hpp"
#include "tests/support/fixtures.hpp"

namespace gf::model {
namespace {

class TokenReconstructionCase : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    dir_ = test::fixtures_dir() + "/token_reconstruction/" + GetParam();
    VitOptions vit = arch_options("vit_tiny_patch14_reg4", 56);
    vit.depth = 2;
    // The teacher copies the encoder it is given: load the encoder first, then the wrapper's
    // own tensors (load_state only writes the student side).
    const StateDict weights = read_safetensors(dir_ + "/weights.safetensors").tensors;
    VisionTransformer encoder(vit);
    load_state_dict(*encoder, weights, "weights.safetensors", ExtraKeys::kIgnore);
    wrapper_ = TokenReconstruction(encoder, TokenReconstructionOptions{});
    wrapper_->load_state(weights);
    draws_.noise = test::read_bin(dir_ + "/noise_std_normal");
    draws_.ratio_uniform = test::read_bin(dir_ + "/ratio_uniform");
    draws_.mask_uniform = test::read_bin(dir_ + "/mask_uniform");
    input_ = test::read_bin(dir_ + "/input");
  }

  std::string dir_;
  TokenReconstruction wrapper_{nullptr};
  CorruptionDraws draws_;
  torch::Tensor input_;
};

TEST_P(TokenReconstructionCase, ForwardMatchesPublishedCode) {
  const auto out = wrapper_->forward(input_, draws_, input_.size(0) - 1);
  EXPECT_LE(test::max_abs_diff(out.student_input, test::read_bin(dir_ + "/student_input")), 1e-6);
  EXPECT_TRUE(out.mask.to(torch::kFloat32).equal(test::read_bin(dir_ + "/mask")));
  EXPECT_LE(test::max_abs_diff(out.teacher_tokens, test::read_bin(dir_ + "/teacher_tokens")), 2e-5);
  EXPECT_LE(test::max_abs_diff(out.student_features, test::read_bin(dir_ + "/student_features")), 2e-5);
  EXPECT_LE(test::max_abs_diff(out.student_tokens, test::read_bin(dir_ + "/student_tokens")), 2e-5);
  const double expected = test::read_json(dir_ + "/loss.json").at("loss").get<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-5 * expected);
}

TEST_P(TokenReconstructionCase, GradientsMatchPublishedCode) {
  wrapper_->forward(input_, draws_, input_.size(0) - 1).loss.backward();
  const auto state = wrapper_->state();
  int compared = 0;
  for (const auto& [name, parameter] : state) {
    const std::string stem = dir_ + "/grad/" + name;
    if (!std::ifstream(stem + ".bin")) continue;
    const torch::Tensor expected = test::read_bin(stem);
    ASSERT_TRUE(parameter.grad().defined()) << name;
    const double scale = expected.abs().max().item<double>();
    EXPECT_LE(test::max_abs_diff(parameter.grad(), expected), 1e-4 * scale) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 11);

  // The clip norm runs over every gradient of the wrapper, the corruption token's included.
  const auto loss = test::read_json(dir_ + "/loss.json");
  const auto step = test::read_json(dir_ + "/step.json");
  std::vector<torch::Tensor> student_grads, all_grads;
  for (const auto& [name, parameter] : state) {
    all_grads.push_back(parameter.grad().norm());
    if (name != "corruption_token") student_grads.push_back(parameter.grad().norm());
  }
  EXPECT_NEAR(torch::stack(student_grads).norm().item<double>(), loss.at("student_grad_norm").get<double>(), 1e-4);
  EXPECT_NEAR(torch::stack(all_grads).norm().item<double>(), step.at("clip").at("total_norm").get<double>(), 1e-4);
}

TEST_P(TokenReconstructionCase, WeightDecayGroupsArePublished) {
  const auto groups = split_weight_decay(wrapper_->optimized_parameters(), TokenDecay::kDecay);
  auto names = [](const NamedTensors& named) {
    std::vector<std::string> out;
    for (const auto& item : named) out.push_back(item.first);
    return out;
  };
  EXPECT_EQ(names(groups.decay), test::read_lines(dir_ + "/decay_keys.txt"));
  EXPECT_EQ(names(groups.no_decay), test::read_lines(dir_ + "/no_decay_keys.txt"));

  // The DINOv2 convention moves the three token tensors to the no-decay group.
  const auto dinov2 = split_weight_decay(wrapper_->optimized_parameters(), TokenDecay::kExclude);
  const auto no_decay = names(dinov2.no_decay);
  for (const char* token : {"cls_token", "reg_token", "pos_embed"})
    EXPECT_NE(std::find(no_decay.begin(), no_decay.end(), token), no_decay.end()) << token;
  EXPECT_EQ(dinov2.decay.size(), groups.decay.size() - 3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenReconstructionCase, ::testing::Values("case1_token_zero", "case2_token_random"));

TEST(TokenReconstruction, StateHasPublishedNamesAndTeacherIsFrozen) {
  VitOptions vit = arch_options("vit_tiny_patch14_reg4", 56);
  TokenReconstruction wrapper(VisionTransformer(vit), TokenReconstructionOptions{});
  const auto state = wrapper->state();
  EXPECT_EQ(state.back().first, "corruption_token");
  EXPECT_TRUE(state.back().second.eq(0).all().item<bool>());
  std::set<std::string> names;
  for (const auto& item : state) names.insert(item.first);
  for (const char* name : {"projector.0.weight", "projector.0.bias", "projector.1.weight", "projector.3.bias",
                           "ls_projector.gamma", "cls_token", "blocks.0.attn.qkv.weight"})
    EXPECT_EQ(names.count(name), 1u) << name;
  // Not optimized by default, optimized on request.
  const auto optimized = wrapper->optimized_parameters();
  EXPECT_EQ(optimized.size() + 1, state.size());
  TokenReconstructionOptions train_token;
  train_token.train_corruption_token = true;
  TokenReconstruction trained(VisionTransformer(vit), train_token);
  EXPECT_EQ(trained->optimized_parameters().back().first, "corruption_token");

  for (const auto& parameter : wrapper->teacher()->parameters()) EXPECT_FALSE(parameter.requires_grad());
  EXPECT_FALSE(wrapper->teacher()->is_training());
  const auto teacher = wrapper->teacher()->named_parameters();
  for (const auto& item : wrapper->student()->named_parameters())
    EXPECT_TRUE(item.value().equal(teacher[item.key()])) << item.key();
}

TEST(TokenReconstruction, DrawsDependOnSampleNotOnBatchSplit) {
  VitOptions vit = arch_options("vit_tiny_patch14_reg4", 56);
  const DrawKey key{7, 2, 11};
  const auto whole = draw_corruption(key, {10, 11, 12, 13}, vit, torch::kCPU);
  const auto tail = draw_corruption(key, {12, 13}, vit, torch::kCPU);
  EXPECT_TRUE(whole.noise.slice(0, 2).equal(tail.noise));
  EXPECT_TRUE(whole.ratio_uniform.slice(0, 2).equal(tail.ratio_uniform));
  EXPECT_TRUE(whole.mask_uniform.slice(0, 2).equal(tail.mask_uniform));
  EXPECT_EQ(whole.noise.sizes(), (std::vector<int64_t>{4, 3, 56, 56}));
  EXPECT_EQ(whole.mask_uniform.sizes(), (std::vector<int64_t>{4, 16}));
  // Another step draws other numbers.
  const auto next = draw_corruption(DrawKey{7, 2, 12}, {10}, vit, torch::kCPU);
  EXPECT_FALSE(next.noise.equal(whole.noise.slice(0, 1)));
}

}  // namespace
}  // namespace gf::model
