// The published loss scaler on hand-made gradients: S's growth and backoff as
// torch.amp.GradScaler.update, the token's gradient scaled, carried and clipped, the
// non-finite check on the optimizer's gradients only, and the state round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "train/grad_scaler.hpp"
#include "train/optimizer.hpp"

namespace gf::train {
namespace {

struct Params {
  torch::Tensor weight = torch::zeros({3}, torch::requires_grad());  // held by the optimizer
  torch::Tensor token = torch::zeros({2}, torch::requires_grad());   // held by none
  GradScaler scaler(GradScalerMode mode, int64_t interval = 3) const {
    return GradScaler({mode, 65536.0, interval}, {weight}, {{"corruption_token", token}});
  }
  void set_grads(torch::Tensor w, torch::Tensor t) {
    weight.mutable_grad() = std::move(w);
    token.mutable_grad() = std::move(t);
  }
};

TEST(GradScaler, GrowsAfterTheIntervalAndBacksOffOnANonFiniteGradient) {
  Params p;
  GradScaler scaler = p.scaler(GradScalerMode::kPublished);
  std::vector<double> scales;
  auto step = [&](float weight_grad) {
    p.set_grads(torch::full({3}, weight_grad), torch::ones({2}));
    const auto unscaled = scaler.unscale();
    scales.push_back(scaler.scale());
    scaler.update(unscaled.finite);
    return unscaled.finite;
  };
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(step(1.0f));
  EXPECT_FALSE(step(std::numeric_limits<float>::infinity()));
  EXPECT_FALSE(step(std::nanf("")));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(step(1.0f));
  const double s = 65536.0;
  // 3 finite steps double S; a non-finite one halves it and restarts the count.
  EXPECT_EQ(scales, (std::vector<double>{s, s, s, 2 * s, 2 * s, 2 * s, 4 * s, 4 * s, 2 * s, s, s, s}));
  EXPECT_EQ(scaler.scale(), 2 * s);
  EXPECT_EQ(scaler.state().growth_tracker, 0);
}

TEST(GradScaler, TheTokenGradientIsScaledCarriedAndClipped) {
  Params p;
  GradScaler scaler = p.scaler(GradScalerMode::kPublished, 2);
  const torch::Tensor g1 = torch::tensor({0.5f, -0.25f}), g2 = torch::tensor({0.125f, 1.0f});
  const torch::Tensor w = torch::tensor({1.0f, 2.0f, 2.0f});

  p.set_grads(w.clone(), g1.clone());
  auto unscaled = scaler.unscale();
  EXPECT_TRUE(p.token.grad().equal(g1 * 65536));                  // S·g, nothing carried yet
  EXPECT_TRUE(p.weight.grad().equal(w));                          // the optimizer's gradient as it was
  EXPECT_FLOAT_EQ(unscaled.unheld_norm.item<float>(), 65536 * g1.norm().item<float>());
  const ClipResult clip = clip_grad_norm({p.weight, p.token}, 0.1);
  const float coef = clip.coefficient.item<float>();
  EXPECT_NEAR(coef, 0.1 / std::sqrt(9.0 + std::pow(65536 * g1.norm().item<double>(), 2)), 1e-12);
  scaler.update(unscaled.finite);
  const torch::Tensor kept = g1 * 65536 * coef;  // the clip shrank it in place

  // The next step's gradients are fresh (the trainer clears them), the token's is added to the kept one.
  p.set_grads(w.clone(), g2.clone());
  unscaled = scaler.unscale();
  EXPECT_TRUE(p.token.grad().equal(g2 * 65536 + kept));
  scaler.update(unscaled.finite);  // the second finite step: S doubles
  EXPECT_EQ(scaler.scale(), 131072.0);

  // A step without a token gradient keeps the carried one as it is.
  const torch::Tensor carried = p.token.grad().clone();
  p.set_grads(w.clone(), torch::Tensor());
  scaler.unscale();
  EXPECT_TRUE(p.token.grad().equal(carried));
}

TEST(GradScaler, NoneChangesNothingAndCarriesNothing) {
  Params p;
  GradScaler scaler = p.scaler(GradScalerMode::kNone);
  EXPECT_EQ(scaler.scale(), 1.0);
  const torch::Tensor g = torch::tensor({0.5f, -0.25f});
  p.set_grads(torch::full({3}, std::numeric_limits<float>::infinity()), g.clone());
  const auto unscaled = scaler.unscale();
  EXPECT_TRUE(unscaled.finite);  // no check: the loop as it was
  EXPECT_TRUE(p.token.grad().equal(g));
  EXPECT_FLOAT_EQ(unscaled.unheld_norm.item<float>(), g.norm().item<float>());
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_TRUE(scaler.state().carried.empty());
}

TEST(GradScaler, NeverGrowsToInfinity) {
  Params p;
  GradScaler scaler({GradScalerMode::kPublished, std::ldexp(1.0, 127), 1}, {p.weight}, {{"corruption_token", p.token}});
  p.set_grads(torch::ones({3}), torch::ones({2}));
  scaler.update(scaler.unscale().finite);
  EXPECT_EQ(scaler.scale(), std::ldexp(1.0, 127));
}

TEST(GradScaler, StateRestoresTheNextStepExactly) {
  Params a, b;
  GradScaler first = a.scaler(GradScalerMode::kPublished), second = b.scaler(GradScalerMode::kPublished);
  for (float g : {0.5f, 0.75f}) {
    a.set_grads(torch::ones({3}), torch::full({2}, g));
    first.unscale();
    clip_grad_norm({a.weight, a.token}, 0.1);
    first.update(true);
  }
  second.load_state(first.state(), "test");
  for (auto* p : {&a, &b}) p->set_grads(torch::ones({3}), torch::full({2}, 0.25f));
  first.update(first.unscale().finite);  // the third finite step: S doubles on both
  second.update(second.unscale().finite);
  EXPECT_TRUE(a.token.grad().equal(b.token.grad()));
  EXPECT_EQ(first.scale(), 131072.0);
  EXPECT_EQ(second.scale(), first.scale());

  GradScalerState bad = first.state();
  bad.carried[0].first = "cls_token";
  EXPECT_THROW(second.load_state(bad, "test"), std::runtime_error);
  bad = first.state();
  bad.scale = 3.0e38 * 10;
  EXPECT_THROW(second.load_state(bad, "test"), std::runtime_error);
}

TEST(GradScaler, ModeNames) {
  EXPECT_EQ(parse_grad_scaler_mode("published"), GradScalerMode::kPublished);
  EXPECT_EQ(parse_grad_scaler_mode("none"), GradScalerMode::kNone);
  EXPECT_THROW(parse_grad_scaler_mode("dynamic"), std::runtime_error);
}

}  // namespace
}  // namespace gf::train
