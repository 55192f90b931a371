// Weight I/O: timm's key set, safetensors round trips, strict-load errors, torch.save files
// written by PyTorch itself, and exported files loaded by the real timm.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "base/sha256.hpp"
#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/temp_dir.hpp"

namespace gf::model {
namespace {

namespace fs = std::filesystem;
using gf::test::vit_fixture;

// A fresh directory per test, removed afterwards.
struct TempDir : gf::test::TempDir {
  TempDir() : gf::test::TempDir("model-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())) {}
};

VisionTransformer tiny_from(const std::string& fixture, const std::string& file) {
  VisionTransformer model(arch_options("vit_tiny_patch14_reg4", 112));
  load_weights_file(*model, vit_fixture(fixture) + "/" + file);
  return model;
}

void expect_same_state(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

using gf::test::error_of;

// The full vit_small_patch14_reg4_dinov2 at 392 px: names, shapes and order of timm's state dict.
TEST(Weights, KeySetMatchesTimmVitSmallAt392) {
  const auto options = arch_options("vit_small_patch14_reg4", 392);
  VisionTransformer model(options);
  const auto state = model_state_dict(*model);
  std::ifstream keys(vit_fixture("vit_small_patch14_reg4_keys.txt"));
  std::string line;
  size_t index = 0;
  int64_t total = 0;
  while (std::getline(keys, line)) {
    ASSERT_LT(index, state.size());
    EXPECT_EQ(state[index].first + "\t" + c10::str(state[index].second.sizes()), line);
    total += state[index].second.numel();
    ++index;
  }
  EXPECT_EQ(index, 175u);
  EXPECT_EQ(index, state.size());
  EXPECT_EQ(total, 21832704);
  EXPECT_EQ(parameter_count(options), 21832704);
}

TEST(Weights, SafetensorsRoundTripIsBitIdentical) {
  TempDir tmp;
  auto model = tiny_from("tiny_112", "model.safetensors");
  const auto metadata = export_metadata(model->options());
  write_safetensors(tmp / "out.safetensors", model_state_dict(*model), metadata);
  const auto contents = read_safetensors(tmp / "out.safetensors");
  EXPECT_EQ(contents.metadata, metadata);
  expect_same_state(contents.tensors, model_state_dict(*model));

  VisionTransformer again(arch_options("vit_tiny_patch14_reg4", 112));
  load_weights_file(*again, tmp / "out.safetensors");
  expect_same_state(model_state_dict(*again), model_state_dict(*model));
  // The exported file is the fixture's file, byte for byte, apart from the header.
  expect_same_state(read_weights(vit_fixture("tiny_112/model.safetensors")), contents.tensors);
}

TEST(Weights, ConvertedMetaLayoutRoundTripsAsTimmLayout) {
  TempDir tmp;
  auto model = tiny_from("tiny_meta_layout", "model.pth");
  write_safetensors(tmp / "out.safetensors", model_state_dict(*model), export_metadata(model->options()));
  VisionTransformer again(arch_options("vit_tiny_patch14_reg4", 112));
  load_weights_file(*again, tmp / "out.safetensors");
  expect_same_state(model_state_dict(*again), model_state_dict(*model));
  EXPECT_FALSE(find_tensor(read_weights(tmp / "out.safetensors"), "mask_token").defined());
}

TEST(Weights, SafetensorsKeepsDtypesAndEmptyMetadata) {
  TempDir tmp;
  const StateDict state = {{"a", at::arange(6, at::kLong).reshape({2, 3})},
                           {"b", at::randn({3}).to(at::kBFloat16)},
                           {"c", at::ones({2}, at::kBool)},
                           {"d", at::randn({4, 2}).t()}};  // non-contiguous input
  write_safetensors(tmp / "x.safetensors", state);
  const auto back = read_safetensors(tmp / "x.safetensors");
  EXPECT_TRUE(back.metadata.empty());
  expect_same_state(back.tensors, state);
  EXPECT_EQ(back.tensors[1].second.scalar_type(), at::kBFloat16);
  EXPECT_EQ(fs::file_size(tmp / "x.safetensors") % 8, 0u);  // header padded to 8, data sizes here all even
}

TEST(Weights, StrictLoadListsEveryProblemInOneError) {
  VisionTransformer model(arch_options("vit_tiny_patch14_reg4", 112));
  StateDict state = read_weights(vit_fixture("tiny_112/model.safetensors"));
  StateDict broken;
  for (auto& [name, tensor] : state) {
    if (name == "blocks.1.norm1.weight" || name == "blocks.2.attn.proj.bias") continue;
    broken.emplace_back(name, name == "norm.weight" ? tensor.slice(0, 0, 95) : tensor);
  }
  broken.emplace_back("projector.fc1.weight", at::zeros({4, 4}));
  const std::string message = error_of([&] { load_state_dict(*model, broken, "bad.safetensors"); });
  EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("missing 2 [blocks.1.norm1.weight, blocks.2.attn.proj.bias]"), std::string::npos) << message;
  EXPECT_NE(message.find("unexpected 1 [projector.fc1.weight]"), std::string::npos) << message;
  EXPECT_NE(message.find("wrong shape 1 [norm.weight found [95] expected [96]]"), std::string::npos) << message;
  // Nothing was copied: a failed load leaves the model as it was.
  EXPECT_TRUE(at::equal(find_tensor(model_state_dict(*model), "norm.bias"), at::zeros({96})));
}

TEST(Weights, ExtraKeysAllowedOnlyWhenAskedFor) {
  VisionTransformer model(arch_options("vit_tiny_patch14_reg4", 112));
  StateDict state = read_weights(vit_fixture("tiny_112/model.safetensors"));
  state.emplace_back("projector.fc1.weight", at::zeros({4, 4}));
  EXPECT_THROW(load_state_dict(*model, state, "with_projector"), std::runtime_error);
  load_state_dict(*model, state, "with_projector", ExtraKeys::kIgnore);
  EXPECT_TRUE(at::equal(find_tensor(model_state_dict(*model), "cls_token"), find_tensor(state, "cls_token")));
}

TEST(Weights, WrongWidthIsAnErrorNamingTheFile) {
  VisionTransformer model(arch_options("vit_small_patch14_reg4", 112));
  const std::string path = vit_fixture("tiny_112/model.safetensors");
  const std::string message = error_of([&] { load_weights_file(*model, path); });
  EXPECT_NE(message.find(path + ": keys do not match the model (missing 126 ["), std::string::npos) << message;
  EXPECT_NE(message.find("; wrong shape 49 [cls_token found [1, 1, 96] expected [1, 1, 384]"), std::string::npos) << message;
}

TEST(Weights, TruncatedAndForeignFilesAreReported) {
  TempDir tmp;
  const std::string source = vit_fixture("tiny_112/model.safetensors");
  std::ifstream in(source, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(tmp / "cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  EXPECT_NE(error_of([&] { read_safetensors(tmp / "cut.safetensors"); }).find("data_offsets"), std::string::npos);
  std::ofstream(tmp / "header.safetensors", std::ios::binary) << bytes.substr(0, 1000);
  EXPECT_NE(error_of([&] { read_safetensors(tmp / "header.safetensors"); }).find("exceeds the file size"), std::string::npos);
  std::ofstream(tmp / "text.pth", std::ios::binary) << "PK\x03\x04 not really a zip";
  EXPECT_NE(error_of([&] { read_weights(tmp / "text.pth"); }).find("text.pth: not a readable torch.save"), std::string::npos);
  EXPECT_NE(error_of([&] { read_weights(tmp / "absent.pth"); }).find("cannot open"), std::string::npos);
}

TEST(Weights, ResampleKeepsPrefixRowsAndIsIdentityOnSameGrid) {
  const auto pos = at::randn({1, 1 + 16, 8});
  EXPECT_TRUE(resample_abs_pos_embed(pos, 4, 4, 1).is_same(pos));
  const auto out = resample_abs_pos_embed(pos, 2, 2, 1);
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{1, 5, 8}));
  EXPECT_TRUE(at::equal(out.slice(1, 0, 1), pos.slice(1, 0, 1)));
  EXPECT_THROW(resample_abs_pos_embed(at::randn({1, 15, 8}), 2, 2, 0), std::runtime_error);
}

TEST(Weights, InferOptionsFromBothLayouts) {
  for (const char* fixture : {"tiny_112", "tiny_from518_to112", "tiny_meta_layout"}) {
    const auto options = infer_vit_options(read_weights(vit_fixture(fixture) + "/model.safetensors"));
    EXPECT_EQ(options.arch, "vit_tiny_patch14_reg4") << fixture;
    EXPECT_EQ(options.embed_dim, 96);
    EXPECT_EQ(options.depth, 3);
    EXPECT_EQ(options.num_heads, 3);
    EXPECT_EQ(options.num_reg_tokens, 4);
    EXPECT_EQ(options.img_size, std::string(fixture) == "tiny_112" ? 112 : 518) << fixture;
  }
}

TEST(Weights, Sha256MatchesTheFixturesChecksumList) {
  std::ifstream sums(gf::test::fixtures_dir() + "/SHA256SUMS");
  std::string digest, name;
  int checked = 0;
  while (sums >> digest >> name) {
    if (name.find("tiny_112/model.") == std::string::npos) continue;
    EXPECT_EQ(base::sha256_file(gf::test::fixtures_dir() + "/" + name), digest) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

// ---- PyTorch itself as the peer ----

std::string python() { return gf::test::python(); }
std::string script(const std::string& name) { return gf::test::test_script("model", name); }

int run(const std::string& command) { return std::system(command.c_str()); }

// A training-style checkpoint written by torch.save: {"epoch", "args", "model": {"module."+key: ...}}
// with a transposed view and a bf16 tensor; read as PyTorch wrote it.
TEST(WeightsPython, ReadsNestedTorchSaveCheckpoint) {
  TempDir tmp;
  const std::string fixture = vit_fixture("tiny_112/model.pth");
  ASSERT_EQ(run(python() + " " + script("make_checkpoint.py") + " " + fixture + " " + (tmp / "ckpt.pth")), 0);
  const auto state = read_weights(tmp / "ckpt.pth");
  const auto reference = read_weights(fixture);
  ASSERT_EQ(state.size(), reference.size() + 2);
  for (size_t i = 0; i < reference.size(); ++i) {
    EXPECT_EQ(state[i].first, reference[i].first);  // "module." stripped
    EXPECT_TRUE(at::equal(state[i].second, reference[i].second)) << reference[i].first;
  }
  EXPECT_TRUE(at::equal(find_tensor(state, "extra.fc1_t"), find_tensor(reference, "blocks.0.mlp.fc1.weight").t()));
  EXPECT_TRUE(at::equal(find_tensor(state, "extra.cls_bf16"), find_tensor(reference, "cls_token").to(at::kBFloat16)));
}

// An exported ViT-S (at a small size, to stay fast) loads into the real timm model with
// load_state_dict(strict=True), and timm computes greenfound's tokens and embeddings.
TEST(WeightsPython, ExportLoadsInTimmWithSameEmbeddings) {
  if (run(python() + " -c 'import timm, safetensors' 2>/dev/null") != 0)
    GTEST_SKIP() << "no timm or safetensors in " << python() << " (scripts/install-deps.sh installs them)";
  TempDir tmp;
  VisionTransformer model(arch_options("vit_small_patch14_reg4", 42));
  model->init_weights(7);
  model->eval();
  const at::Tensor images = at::randn({2, 3, 42, 42}, at::make_generator<at::CPUGeneratorImpl>(11));
  at::Tensor tokens;
  {
    at::NoGradGuard no_grad;
    tokens = model->forward_features(images);
  }
  write_safetensors(tmp / "export.safetensors", model_state_dict(*model), export_metadata(model->options()));
  write_safetensors(tmp / "tokens.safetensors", {{"images", images}, {"tokens", tokens}});
  EXPECT_EQ(run(python() + " " + script("check_export.py") + " " + (tmp / "export.safetensors") + " " +
                (tmp / "tokens.safetensors")),
            0);
}

}  // namespace
}  // namespace gf::model
