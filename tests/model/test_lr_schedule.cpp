// The published learning-rate curve: timm's CosineLRScheduler(t_initial=100, warmup_t=10,
// warmup_lr_init=5e-9, lr_min=5e-9, warmup_prefix=False) over 120 epochs
// (tests/fixtures/token_reconstruction/lr_schedule.json).
#include <gtest/gtest.h>

#include <cmath>

#include "model/lr_schedule.hpp"
#include "tests/support/fixtures.hpp"

namespace gf::model {
namespace {

TEST(LrSchedule, ReproducesPublishedCurve) {
  const auto fixture = test::read_json(test::fixtures_dir() + "/token_reconstruction/lr_schedule.json");
  const CosineSchedule schedule(CosineScheduleOptions{});
  const auto expected = fixture.at("lr").get<std::vector<double>>();
  ASSERT_EQ(expected.size(), 120u);
  for (int64_t epoch : {0, 5, 10, 50, 99, 100, 119})
    EXPECT_NEAR(schedule.lr(epoch), expected[epoch], 1e-12 * expected[epoch]) << "epoch " << epoch;
  for (size_t epoch = 0; epoch < expected.size(); ++epoch)
    EXPECT_NEAR(schedule.lr(static_cast<int64_t>(epoch)), expected[epoch], 1e-12 * expected[epoch]) << "epoch " << epoch;
  EXPECT_EQ(schedule.lr(0), fixture.at("lr_after_construction").get<double>());
}

TEST(LrSchedule, WarmupPrefixShiftsTheCosine) {
  CosineScheduleOptions options;
  options.warmup_prefix = true;
  const CosineSchedule schedule(options);
  EXPECT_DOUBLE_EQ(schedule.lr(10), options.base_lr);
  EXPECT_DOUBLE_EQ(schedule.lr(110), options.lr_min);
}

}  // namespace
}  // namespace gf::model
