// pretrain with objective.kind masked_pixels on a tiny packed synthetic set: the loss falls,
// masks and everything else resume bitwise exactly after a crash, and a checkpoint exports
// the bare encoder (what `embed --checkpoint` and `export` read).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/train/run_test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/metrics_record.hpp"
#include "train/pretrain.hpp"
#include "train/run_config.hpp"

namespace gf::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class MaskedPixelsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = std::make_unique<gf::test::TempDir>("masked_pixels");
    test::write_packed_synthetic(temp_->str(), 32, 128);
  }
  static void TearDownTestSuite() { temp_.reset(); }

  // vit_tiny at 56 px, 4 steps per epoch of 32 images.
  static RunConfig config(int64_t epochs) {
    json j = {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}, {"init_seed", 1}}},
              {"objective", {{"kind", "masked_pixels"}, {"mask_ratio", 0.6}}},
              {"optim", {{"lr", 1e-3}, {"epochs", epochs}, {"warmup_epochs", 0}, {"cosine_epochs", epochs},
                         {"grad_scaler", "none"}, {"clip_grad_norm", 5.0}}},
              {"data", {{"path", temp_->str() + "/dataset"}, {"batch_size", 8}, {"workers", 1}, {"prefetch", 1},
                        {"augment", false}}},
              {"train", {{"threads", 1}, {"log_every", 1}, {"checkpoint_every_epochs", 0}, {"device", "cpu"}}}};
    return parse_run_config(j, "masked");
  }

  static std::string run_dir(const std::string& name) {
    const std::string dir = temp_->str() + "/runs/" + name;
    fs::remove_all(dir);
    return dir;
  }

  static std::unique_ptr<gf::test::TempDir> temp_;
};

std::unique_ptr<gf::test::TempDir> MaskedPixelsTest::temp_;

TEST_F(MaskedPixelsTest, ConfigNamesTheObjective) {
  EXPECT_EQ(config(1).objective_kind, ObjectiveKind::kMaskedPixels);
  EXPECT_EQ(to_json(config(1))["objective"]["kind"], "masked_pixels");
  EXPECT_EQ(parse_run_config(json::object()).objective_kind, ObjectiveKind::kTokenReconstruction);
  // A Token Reconstruction identity is what it was before objective.kind (older checkpoints resume).
  EXPECT_FALSE(identity_fields(parse_run_config(json::object())).contains("objective.kind"));
  EXPECT_EQ(identity_fields(config(1))["objective.kind"], "masked_pixels");
  EXPECT_EQ(identity_fields(config(1))["objective.mask_ratio"], 0.6);
  json bad = {{"objective", {{"kind", "masked_pixels"}, {"mask_ratio", 1.0}}}};
  EXPECT_THROW(parse_run_config(bad), std::exception);
  json unknown = {{"objective", {{"kind", "mae"}}}};
  EXPECT_THROW(parse_run_config(unknown), std::exception);
}

TEST_F(MaskedPixelsTest, LossFallsAndTheCheckpointExportsTheEncoder) {
  const std::string dir = run_dir("falls");
  const PretrainResult result = pretrain(config(6), PretrainOptions{dir});
  EXPECT_EQ(result.status, PretrainStatus::kCompleted);
  const auto records = read_metrics(dir + "/metrics.jsonl");
  ASSERT_EQ(records.size(), 24u);
  double first = 0, last = 0;
  for (size_t i = 0; i < 4; ++i) first += records[i].loss, last += records[records.size() - 1 - i].loss;
  EXPECT_LT(last, 0.8 * first) << "first epoch " << first / 4 << ", last " << last / 4;

  const std::string checkpoint = latest_checkpoint(dir);
  const CheckpointWeights weights = load_checkpoint_weights(checkpoint);
  EXPECT_EQ(weights.vit.arch, "vit_tiny_patch14_reg4");
  for (const auto& [name, tensor] : weights.student)
    EXPECT_TRUE(name.rfind("pixel_head", 0) != 0 && name != "mask_token") << name;
  model::VisionTransformer encoder(model::arch_options("vit_tiny_patch14_reg4", 56));
  const auto stored = model::read_safetensors(checkpoint + "/model.safetensors").tensors;
  model::load_state_dict(*encoder, weights.student, "checkpoint");  // every encoder tensor, nothing else
  EXPECT_EQ(stored.size(), weights.student.size() + 3);
  for (const auto& [name, tensor] : stored)
    if (name == "blocks.0.attn.qkv.weight") EXPECT_TRUE(encoder->named_parameters()[name].equal(tensor));
}

TEST_F(MaskedPixelsTest, ResumeAfterCrashIsBitwiseExact) {
  const std::string straight = run_dir("straight");
  pretrain(config(2), PretrainOptions{straight, "", 6});
  RunConfig every_step = config(2);
  every_step.train.checkpoint_every_steps = 1;
  const std::string crashed = run_dir("crashed");
  PretrainOptions crashing{crashed, "", 6};
  crashing.on_step = [](const StepView& view) {
    if (view.record.step == 3) throw std::runtime_error("simulated crash");
  };
  EXPECT_THROW(pretrain(every_step, crashing), std::runtime_error);
  pretrain(every_step, PretrainOptions{crashed, "auto", 6});
  const auto a = read_metrics(straight + "/metrics.jsonl"), b = read_metrics(crashed + "/metrics.jsonl");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(b[i].loss, a[i].loss) << "step " << i + 1;
  const auto x = model::read_safetensors(latest_checkpoint(straight) + "/model.safetensors").tensors;
  const auto y = model::read_safetensors(latest_checkpoint(crashed) + "/model.safetensors").tensors;
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(x[i].second.equal(y[i].second)) << x[i].first;
}

}  // namespace
}  // namespace gf::train
