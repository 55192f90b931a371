// The C++ ViT against timm v0.9.16 itself: every fixture in timm_vit_reg4/, loaded from both
// its .safetensors and its .pth, must give timm's tokens and pooled embeddings.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"
#include "tests/support/fixtures.hpp"

namespace gf::model {
namespace {

using gf::test::max_abs_diff;
using gf::test::read_bin;
using gf::test::vit_fixture;

const std::set<std::string> kFixtures = {"tiny_112", "tiny_from518_to112", "tiny_meta_layout"};
constexpr double kTokenTolerance = 2e-5;  // the fixtures' README

VisionTransformer load_tiny(const std::string& weights_path) {
  VisionTransformer model(arch_options("vit_tiny_patch14_reg4", 112));
  model->eval();
  load_weights_file(*model, weights_path);
  return model;
}

TEST(VitFixtures, EveryFixtureFolderIsCovered) {
  std::set<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(vit_fixture("")))
    if (entry.is_directory()) found.insert(entry.path().filename().string());
  EXPECT_EQ(found, kFixtures);
}

class VitFixture : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(VitFixture, TokensAndEmbeddingsMatchTimm) {
  const auto& [name, file] = GetParam();
  const std::string dir = vit_fixture(name) + "/";
  at::set_num_threads(2);
  torch::NoGradGuard no_grad;
  auto model = load_tiny(dir + file);
  const auto input = read_bin(dir + "input");

  const auto tokens = model->forward_features(input);
  EXPECT_LE(max_abs_diff(tokens, read_bin(dir + "tokens")), kTokenTolerance) << name << "/" << file;
  EXPECT_LE(max_abs_diff(model->forward_embedding(input, Pool::kCls), read_bin(dir + "embed_token")), kTokenTolerance);
  EXPECT_LE(max_abs_diff(model->forward_embedding(input, Pool::kAvg), read_bin(dir + "embed_avg")), kTokenTolerance);
  EXPECT_LE(max_abs_diff(model->forward_embedding(input, Pool::kMeanAll), read_bin(dir + "embed_mean_all")),
            kTokenTolerance);

  // The pieces forward_features is made of agree with the whole.
  auto x = model->add_position_and_prefix(model->embed_patches(input));
  EXPECT_TRUE(at::equal(model->forward_tokens(x), tokens));

  if (std::filesystem::exists(dir + "stages.bin")) {
    const auto stages = read_bin(dir + "stages");
    ASSERT_EQ(stages.size(0), model->num_blocks() + 1);
    EXPECT_LE(max_abs_diff(x, stages[0]), kTokenTolerance) << "block input";
    for (int64_t i = 0; i < model->num_blocks(); ++i) {
      x = model->forward_block(i, x);
      EXPECT_LE(max_abs_diff(x, stages[i + 1]), kTokenTolerance) << "output of block " << i;
    }
  }
  const auto state = model_state_dict(*model);
  if (std::filesystem::exists(dir + "pos_embed_resampled.bin"))
    EXPECT_LE(max_abs_diff(find_tensor(state, "pos_embed"), read_bin(dir + "pos_embed_resampled")), 1e-5);
  if (std::filesystem::exists(dir + "cls_token_converted.bin"))
    EXPECT_LE(max_abs_diff(find_tensor(state, "cls_token"), read_bin(dir + "cls_token_converted")), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(TimmVitReg4, VitFixture,
                         ::testing::Combine(::testing::ValuesIn(std::vector<std::string>(kFixtures.begin(), kFixtures.end())),
                                            ::testing::Values("model.safetensors", "model.pth")),
                         [](const auto& info) {
                           std::string file = std::get<1>(info.param) == "model.pth" ? "pth" : "safetensors";
                           return std::get<0>(info.param) + "_" + file;
                         });

// Both weight files of a fixture hold the same tensors under the same names, in the order
// of its keys.txt.
TEST_P(VitFixture, BothFormatsReadTheSameTensorsInKeyOrder) {
  const auto& [name, file] = GetParam();
  const std::string dir = vit_fixture(name) + "/";
  const auto state = read_weights(dir + file);
  std::ifstream keys(dir + "keys.txt");
  std::string line;
  size_t index = 0;
  while (std::getline(keys, line)) {
    ASSERT_LT(index, state.size());
    const std::string key = line.substr(0, line.find('\t'));
    EXPECT_EQ(state[index].first, key);
    EXPECT_EQ(c10::str(state[index].second.sizes()), line.substr(line.find('\t') + 1));
    ++index;
  }
  EXPECT_EQ(index, state.size());
  const auto other = read_weights(dir + (file == "model.pth" ? "model.safetensors" : "model.pth"));
  ASSERT_EQ(other.size(), state.size());
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(at::equal(state[i].second, other[i].second)) << state[i].first;
}

}  // namespace
}  // namespace gf::model
