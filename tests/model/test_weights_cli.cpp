// `greenfound inspect` and `greenfound export` end to end, through the built binary.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/temp_dir.hpp"

namespace gf::model {
namespace {

namespace fs = std::filesystem;
using gf::test::max_abs_diff;
using gf::test::read_bin;
using gf::test::vit_fixture;

using gf::test::greenfound;

class Cli : public ::testing::Test {
 protected:
  std::string tmp(const std::string& name) const { return dir_ / name; }
  gf::test::TempDir dir_{"model-cli"};
};

std::string fixture_sha256(const std::string& relative) {
  std::ifstream sums(gf::test::fixtures_dir() + "/SHA256SUMS");
  std::string digest, name;
  while (sums >> digest >> name)
    if (name == relative || name == "./" + relative) return digest;
  return "";
}

TEST_F(Cli, InspectDescribesAMetaLayoutCheckpoint) {
  const auto r = greenfound("inspect " + vit_fixture("tiny_meta_layout/model.pth"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("torch.save zip (state dict), 50 tensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Meta DINOv2 original"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("vit_tiny_patch14_reg4 = timm vit_small_patch14_reg4_dinov2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("img_size 518 (pos_embed grid 37x37)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("blocks.{0..2}.attn.qkv.weight"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("524,928 in encoder keys"), std::string::npos) << r.output;
  const std::string digest = fixture_sha256("timm_vit_reg4/tiny_meta_layout/model.pth");
  ASSERT_FALSE(digest.empty());
  EXPECT_NE(r.output.find("sha256      " + digest), std::string::npos) << r.output;
}

TEST_F(Cli, InspectRejectsWhatItDoesNotKnow) {
  std::ofstream(tmp("notes.txt")) << "hello";
  const auto r = greenfound("inspect " + tmp("notes.txt"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("notes.txt: not a recognised input"), std::string::npos) << r.output;
}

// Meta layout at 518 -> exported at 112 -> loaded as plain timm layout: timm's tokens.
TEST_F(Cli, ExportConvertsAndResamplesToTimmLayout) {
  const auto r = greenfound("export --weights " + vit_fixture("tiny_meta_layout/model.pth") + " --img-size 112 --out " +
                            tmp("enc.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto contents = read_safetensors(tmp("enc.safetensors"));
  EXPECT_EQ(contents.metadata.at("timm_kwargs"),
            R"({"depth": 3, "embed_dim": 96, "img_size": 112, "num_classes": 0, "num_heads": 3})");
  EXPECT_EQ(contents.metadata.at("architecture"), "vit_small_patch14_reg4_dinov2");
  EXPECT_EQ(contents.metadata.at("source_sha256"), fixture_sha256("timm_vit_reg4/tiny_meta_layout/model.pth"));
  EXPECT_FALSE(find_tensor(contents.tensors, "mask_token").defined());

  VisionTransformer model(arch_options("vit_tiny_patch14_reg4", 112));
  load_state_dict(*model, contents.tensors, tmp("enc.safetensors"));  // no conversion or resampling needed
  torch::NoGradGuard no_grad;
  const std::string dir = vit_fixture("tiny_meta_layout") + "/";
  EXPECT_LE(max_abs_diff(model->forward_features(read_bin(dir + "input")), read_bin(dir + "tokens")), 2e-5);
}

TEST_F(Cli, ExportRefusesExtraKeysUnlessAllowed) {
  StateDict state = read_weights(vit_fixture("tiny_112/model.safetensors"));
  state.emplace_back("projector.fc1.weight", at::zeros({96, 96}));
  write_safetensors(tmp("with_head.safetensors"), state);
  const auto refused = greenfound("export --weights " + tmp("with_head.safetensors") + " --out " + tmp("a.safetensors"));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("unexpected 1 [projector.fc1.weight]"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(tmp("a.safetensors")));
  const auto allowed = greenfound("export --allow-extra-keys --weights " + tmp("with_head.safetensors") + " --out " +
                                  tmp("a.safetensors"));
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  const auto exported = read_weights(tmp("a.safetensors"));
  const auto reference = read_weights(vit_fixture("tiny_112/model.safetensors"));
  ASSERT_EQ(exported.size(), reference.size());
  for (size_t i = 0; i < exported.size(); ++i) {
    EXPECT_EQ(exported[i].first, reference[i].first);
    EXPECT_TRUE(at::equal(exported[i].second, reference[i].second)) << exported[i].first;
  }
}

TEST_F(Cli, HelpListsTheFlags) {
  const auto r = greenfound("export --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--allow-extra-keys"), std::string::npos) << r.output;
  EXPECT_EQ(greenfound("inspect --help").exit_code, 0);
}

}  // namespace
}  // namespace gf::model
