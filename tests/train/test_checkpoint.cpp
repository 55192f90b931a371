// Checkpoint folders: round trip, keep-last, incomplete folders ignored, the encoder export view.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/arch_registry.hpp"
#include "model/token_reconstruction.hpp"
#include "model/weights.hpp"
#include "tests/support/temp_dir.hpp"
#include "train/checkpoint.hpp"

namespace gf::train {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:

  Checkpoint make(int64_t step) {
    model::VitOptions vit = model::arch_options("vit_tiny_patch14_reg4", 56);
    vit.depth = 1;
    torch::manual_seed(step);
    model::VisionTransformer encoder(vit);
    encoder->init_weights(static_cast<uint64_t>(step));
    model::TokenReconstruction wrapper(encoder, model::TokenReconstructionOptions{});
    Checkpoint c;
    c.state.step = step;
    c.state.epoch = 1;
    c.state.epoch_step = step % 3;
    c.state.adam_step = step;
    c.state.last_loss = 0.25;
    c.state.config = {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}}}};
    c.state.identity = {{"model.img_size", 56}};
    c.state.config_hash = "abc";
    c.model = wrapper->state();
    c.optimizer = {{"exp_avg.cls_token", torch::randn({1, 1, 96})}, {"exp_avg_sq.cls_token", torch::rand({1, 1, 96})}};
    c.rng = {{"torch_cpu", at::detail::getDefaultCPUGenerator().get_state()}};
    c.state.grad_scale = 2251799813685248.0;  // 2^51
    c.state.grad_scale_growth = 1999;
    c.carried_grads = {{"corruption_token", torch::randn({1, 1, 96}) * 1e9}};
    return c;
  }

  gf::test::TempDir dir_{"checkpoint"};
  std::string run_dir_ = dir_.str();
};

TEST_F(CheckpointTest, RoundTripIsExact) {
  const Checkpoint saved = make(7);
  const std::string path = save_checkpoint(run_dir_, saved, 3);
  EXPECT_EQ(fs::path(path).filename(), "step-00000007");
  const Checkpoint loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.state.step, 7);
  EXPECT_EQ(loaded.state.epoch_step, 1);
  EXPECT_EQ(loaded.state.adam_step, 7);
  EXPECT_EQ(loaded.state.identity, saved.state.identity);
  EXPECT_EQ(loaded.state.config_hash, "abc");
  ASSERT_EQ(loaded.model.size(), saved.model.size());
  for (size_t i = 0; i < saved.model.size(); ++i) {
    EXPECT_EQ(loaded.model[i].first, saved.model[i].first);
    EXPECT_TRUE(loaded.model[i].second.equal(saved.model[i].second)) << saved.model[i].first;
  }
  ASSERT_EQ(loaded.optimizer.size(), 2u);
  EXPECT_TRUE(loaded.optimizer[1].second.equal(saved.optimizer[1].second));
  ASSERT_EQ(loaded.rng.size(), 1u);
  EXPECT_EQ(loaded.rng[0].first, "torch_cpu");
  EXPECT_TRUE(loaded.rng[0].second.equal(saved.rng[0].second));
  EXPECT_EQ(loaded.state.grad_scale, 2251799813685248.0);
  EXPECT_EQ(loaded.state.grad_scale_growth, 1999);
  ASSERT_EQ(loaded.carried_grads.size(), 1u);
  EXPECT_EQ(loaded.carried_grads[0].first, "corruption_token");
  EXPECT_TRUE(loaded.carried_grads[0].second.equal(saved.carried_grads[0].second));
}

TEST_F(CheckpointTest, KeepsTheLastKAndIgnoresIncompleteFolders) {
  for (int64_t step : {1, 2, 3, 4}) save_checkpoint(run_dir_, make(step), 2);
  auto all = list_checkpoints(run_dir_);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(fs::path(all[0]).filename(), "step-00000003");
  EXPECT_EQ(latest_checkpoint(run_dir_), all[1]);

  // A save that died before its rename, and a truncated newest checkpoint, are not resumed.
  fs::create_directories(run_dir_ + "/checkpoints/step-00000009.tmp");
  const std::string newest = save_checkpoint(run_dir_, make(5), 5);
  fs::resize_file(newest + "/model.safetensors", 100);
  EXPECT_EQ(fs::path(latest_checkpoint(run_dir_)).filename(), "step-00000004");
  try {
    load_checkpoint(newest);
    FAIL() << "a truncated checkpoint loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors: size: found 100 bytes"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, SummaryListsCompleteAndTornCheckpoints) {
  const std::string kept = save_checkpoint(run_dir_, make(4), 5);
  const std::string torn = save_checkpoint(run_dir_, make(6), 5);
  fs::resize_file(torn + "/optimizer.safetensors", 10);
  fs::create_directories(run_dir_ + "/checkpoints/step-00000008.tmp");
  ASSERT_TRUE(is_checkpoint_or_run_dir(run_dir_));
  ASSERT_TRUE(is_checkpoint_or_run_dir(kept));
  EXPECT_FALSE(is_checkpoint_or_run_dir(run_dir_ + "/checkpoints"));

  std::ostringstream run;
  print_checkpoint_summary(run_dir_, run);
  EXPECT_NE(run.str().find("1 complete checkpoint,"), std::string::npos) << run.str();
  EXPECT_NE(run.str().find("step-00000004: step 4 (epoch 1, 1 steps into it), last loss 0.25, vit_tiny_patch14_reg4 at 56 px"),
            std::string::npos) << run.str();
  EXPECT_NE(run.str().find("incomplete step-00000006: " + torn + "/optimizer.safetensors: size: found 10 bytes"),
            std::string::npos) << run.str();
  EXPECT_NE(run.str().find("incomplete step-00000008.tmp: " + run_dir_ + "/checkpoints/step-00000008.tmp/state.json: missing"),
            std::string::npos) << run.str();

  std::ostringstream one;
  print_checkpoint_summary(kept, one);
  EXPECT_EQ(one.str().rfind("checkpoint " + kept + "\n  step-00000004: step 4", 0), 0u) << one.str();
  std::ostringstream broken;
  EXPECT_THROW(print_checkpoint_summary(torn, broken), std::runtime_error);
}

TEST_F(CheckpointTest, ExportViewHoldsTheEncoderOnly) {
  const Checkpoint saved = make(2);
  const CheckpointWeights weights = load_checkpoint_weights(save_checkpoint(run_dir_, saved, 1));
  EXPECT_EQ(weights.step, 2);
  EXPECT_EQ(weights.vit.embed_dim, 96);
  EXPECT_EQ(weights.vit.depth, 1);
  EXPECT_EQ(weights.vit.img_size, 56);
  EXPECT_EQ(weights.vit.arch, "vit_tiny_patch14_reg4");
  for (const auto& [name, tensor] : weights.student) {
    EXPECT_EQ(name.find("projector"), std::string::npos) << name;
    EXPECT_NE(name, "corruption_token");
  }
  // Exactly what a plain encoder loads.
  model::VisionTransformer encoder(weights.vit);
  model::load_state_dict(*encoder, weights.student, "checkpoint");
  EXPECT_EQ(weights.student.size() + 8, saved.model.size());  // 6 projector tensors, gamma, token
}

}  // namespace
}  // namespace gf::train
