// Resuming on another layout (any ranks, same global batch) needs nothing; another global
// batch is refused unless asked for, and then continues at the first untrained whole step.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "train/resume_check.hpp"
#include "train/run_config.hpp"

namespace {

using gf::train::plan_resume;
using gf::train::RunConfig;
using gf::train::TrainingState;

const nlohmann::json kData = {{"fingerprint", "f"}, {"path", "d"}};

TrainingState saved_with(int64_t batch) {
  RunConfig config;
  config.data.batch_size = batch;
  TrainingState state;
  state.identity = gf::train::identity_fields(config);
  state.dataset = kData;
  state.epoch = 3;
  state.epoch_step = 5;
  state.samples_seen = 5 * batch;
  return state;
}

std::string error_of(const TrainingState& stored, int64_t batch, bool allow) {
  RunConfig now;
  now.data.batch_size = batch;
  try {
    plan_resume("ck", stored, {gf::train::identity_fields(now), batch, kData, allow});
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(ResumeCheck, SameGlobalBatchResumesWhereItStopped) {
  RunConfig now;
  now.data.batch_size = 128;
  const auto plan = plan_resume("ck", saved_with(128), {gf::train::identity_fields(now), 128, kData, false});
  EXPECT_EQ(plan.epoch_step, 5);
  EXPECT_EQ(plan.note, "");
}

TEST(ResumeCheck, AnotherGlobalBatchOnlyWhenAskedFor) {
  const std::string refused = error_of(saved_with(128), 96, false);
  EXPECT_NE(refused.find("ck: config differs from the checkpoint's (checkpoint vs now): data.batch_size: 128 vs 96"),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("--allow-batch-change"), std::string::npos) << refused;

  RunConfig now;
  now.data.batch_size = 96;
  const auto plan = plan_resume("ck", saved_with(128), {gf::train::identity_fields(now), 96, kData, true});
  EXPECT_EQ(plan.epoch_step, 6);  // 640 samples trained: 6 whole steps of 96 (576), 64 seen twice
  EXPECT_NE(plan.note.find("epoch 3 continues at sample 576 of the 640 already trained"), std::string::npos) << plan.note;

  // The flag never lets other fields differ.
  RunConfig other = now;
  other.optim.lr = 1e-3;
  EXPECT_THROW(plan_resume("ck", saved_with(128), {gf::train::identity_fields(other), 96, kData, true}), std::runtime_error);
}

}  // namespace

namespace {

TEST(ResumeCheck, AnotherDatasetOnlyWhenAskedFor) {
  RunConfig now;
  now.data.batch_size = 128;
  TrainingState stored = saved_with(128);
  stored.dataset = {{"fingerprint", std::string(64, 'a')}, {"path", "/data/a"}};
  gf::train::ResumeRequest request{gf::train::identity_fields(now), 128, {{"fingerprint", std::string(64, 'b')}, {"path", "/data/b"}}};
  try {
    plan_resume("ck", stored, request);
    FAIL() << "another dataset resumed";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("ck: dataset fingerprint: found bbbbbbbbbbbb.. (/data/b), expected the checkpoint's "
                           "aaaaaaaaaaaa.. (/data/a)"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("--allow-dataset-change"), std::string::npos) << message;
  }
  request.allow_dataset_change = true;
  const auto plan = plan_resume("ck", stored, request);
  EXPECT_EQ(plan.epoch_step, 5);
  EXPECT_NE(plan.note.find("dataset changed from aaaaaaaaaaaa.. (/data/a) to bbbbbbbbbbbb.. (/data/b)"), std::string::npos);
  // The same content in another folder: nothing to say.
  request.allow_dataset_change = false;
  request.dataset = {{"fingerprint", std::string(64, 'a')}, {"path", "/moved/a"}};
  EXPECT_EQ(plan_resume("ck", stored, request).note, "");
  // A checkpoint from before fingerprints resumes, saying its data was not compared.
  stored.dataset = nlohmann::json::object();
  EXPECT_NE(plan_resume("ck", stored, request).note.find("not compared"), std::string::npos);
}

}  // namespace
