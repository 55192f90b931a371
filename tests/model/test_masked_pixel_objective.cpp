// The masked pixel objective: patch order, the mask, the loss over masked patches only, a
// falling loss on a tiny fixed batch, and the state round trip.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>

#include <cmath>

#include "model/arch_registry.hpp"
#include "model/masked_pixel_objective.hpp"

namespace gf::model {
namespace {

MaskedPixelObjective tiny_objective(uint64_t seed) {
  VisionTransformer encoder(arch_options("vit_tiny_patch14_reg4", 56));
  encoder->init_weights(seed);
  torch::manual_seed(seed);
  return MaskedPixelObjective(encoder, MaskedPixelOptions{});
}

TEST(MaskedPixelObjective, PatchifyOrdersPatchesAsTheConvEmbedding) {
  // An independent layout: unfold into [B, C, g, g, p, p], patches row-major, pixels (row, column, channel).
  const torch::Tensor images = torch::randn({2, 3, 28, 28});
  const torch::Tensor reference =
      images.unfold(2, 14, 14).unfold(3, 14, 14).permute({0, 2, 3, 4, 5, 1}).reshape({2, 4, 14 * 14 * 3});
  EXPECT_TRUE(patchify(images, 14).equal(reference));
  // Patch 1 is the top-right one: its first value is pixel (0, 14) of channel 0.
  EXPECT_EQ(patchify(images, 14)[0][1][0].item<float>(), images[0][0][0][14].item<float>());
}

TEST(MaskedPixelObjective, MaskFollowsTheUniformsAndOnlyMaskedPatchesCount) {
  at::set_num_threads(1);
  MaskedPixelObjective objective = tiny_objective(0);
  const torch::Tensor images = torch::randn({2, 3, 56, 56});
  torch::Tensor uniform = torch::rand({2, 16});
  const MaskedPixelOutput out = objective->forward(images, uniform);
  EXPECT_TRUE(out.mask.equal(uniform < 0.6));
  // No masked patch: nothing to reconstruct, a zero loss (not NaN).
  EXPECT_EQ(objective->forward(images, torch::ones({2, 16})).loss.item<float>(), 0.0f);
  // One masked patch (sample 0, patch 5 = row 1, column 1: pixels [14, 28) x [14, 28)). Its
  // pixels are not in the encoder's input (the mask token replaces them), so shifting them by
  // ±100 moves the target alone: with d = prediction - pixels (|d| < 100), the two losses are
  // mean|d - 100| and mean|d + 100|, summing to exactly 200 when nothing but that patch counts.
  torch::Tensor one = torch::ones({2, 16});
  one[0][5] = 0;
  torch::NoGradGuard no_grad;
  using torch::indexing::Slice;
  const auto shifted = [&](float by) {
    torch::Tensor out = images.clone();
    out.index({0, Slice(), Slice(14, 28), Slice(14, 28)}).add_(by);
    return out;
  };
  const float up = objective->forward(shifted(100), one).loss.item<float>();
  const float down = objective->forward(shifted(-100), one).loss.item<float>();
  EXPECT_NEAR(up + down, 200.0f, 1e-3f);
  EXPECT_GT(std::abs(up - down), 0.0f);
}

TEST(MaskedPixelObjective, LossFallsOnATinyFixedBatch) {
  at::set_num_threads(1);
  torch::manual_seed(3);
  MaskedPixelObjective objective = tiny_objective(1);
  const torch::Tensor images = torch::randn({4, 3, 56, 56}).cumsum(3) / 8;  // smooth rows: predictable pixels
  const torch::Tensor uniform = torch::rand({4, 16});
  torch::optim::Adam adam(objective->parameters(), torch::optim::AdamOptions(1e-3));
  float first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    adam.zero_grad();
    const torch::Tensor loss = objective->forward(images, uniform).loss;
    loss.backward();
    adam.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  EXPECT_LT(last, 0.7f * first);
}

TEST(MaskedPixelObjective, StateRoundTripsAndNamesTheEncoderAsTimm) {
  at::set_num_threads(1);
  MaskedPixelObjective a = tiny_objective(0), b = tiny_objective(7);
  const auto state = a->state();
  const auto encoder_names = a->encoder()->named_parameters().size() + a->encoder()->named_buffers().size();
  ASSERT_EQ(state.size(), encoder_names + 3);
  EXPECT_EQ(state[encoder_names].first, "pixel_head.weight");
  EXPECT_EQ(state[encoder_names + 1].first, "pixel_head.bias");
  EXPECT_EQ(state[encoder_names + 2].first, "mask_token");
  EXPECT_EQ(state.front().first, "cls_token");

  const torch::Tensor images = torch::randn({2, 3, 56, 56}), uniform = torch::rand({2, 16});
  torch::NoGradGuard no_grad;
  EXPECT_NE(a->forward(images, uniform).loss.item<float>(), b->forward(images, uniform).loss.item<float>());
  b->load_state(state);
  EXPECT_EQ(a->forward(images, uniform).loss.item<float>(), b->forward(images, uniform).loss.item<float>());
  auto missing = state;
  missing.pop_back();
  EXPECT_THROW(b->load_state(missing), std::runtime_error);
  EXPECT_EQ(a->optimized_parameters().size(), a->parameters().size());
}

}  // namespace
}  // namespace gf::model
