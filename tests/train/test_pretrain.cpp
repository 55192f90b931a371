// The training loop on a tiny packed synthetic set: exact resume after a crash, preemption by
// signal, NaN stop, refusal of a mismatching config, and the demo config's falling loss.
#include <gtest/gtest.h>
#include <torch/version.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>

#include "data/pack.hpp"
#include "model/weights.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/train/run_test_support.hpp"
#include "train/checkpoint.hpp"
#include "train/metrics_record.hpp"
#include "train/pretrain.hpp"
#include "train/provenance.hpp"
#include "train/resume_check.hpp"
#include "train/run_config.hpp"

namespace gf::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string text_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PretrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = std::make_unique<gf::test::TempDir>("pretrain");
    root_ = temp_->str();
    test::write_packed_synthetic(root_, 32, 128);
    // 9 of them: batches of 4 leave a last batch of 1 (published: kept as a step).
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(root_ + "/images"))
      if (entry.path().extension() == ".jpg" || entry.path().extension() == ".png") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    fs::create_directories(root_ + "/odd_images");
    for (size_t i = 0; i < 9; ++i) fs::copy_file(files.at(i), root_ + "/odd_images/" + files[i].filename().string());
    data::PackOptions pack;
    pack.images_dir = root_ + "/odd_images";
    pack.out_dir = root_ + "/odd_dataset";
    pack.resolution = 128;
    pack.threads = 1;
    pack.show_progress = false;
    data::pack(pack);
  }
  static void TearDownTestSuite() { temp_.reset(); }

  // vit_tiny (96 wide) at 56 px: 4 optimizer steps per epoch of 32 images.
  static RunConfig tiny_config() {
    json config = {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}, {"init_seed", 1}}},
                   {"optim", {{"lr", 1e-3}, {"epochs", 3}, {"warmup_epochs", 1}, {"cosine_epochs", 2}}},
                   {"data", {{"path", root_ + "/dataset"}, {"batch_size", 8}, {"workers", 1}, {"prefetch", 1}}},
                   {"train", {{"threads", 1}, {"log_every", 1}, {"checkpoint_every_epochs", 0}, {"device", "cpu"}}}};
    return parse_run_config(config, "tiny");
  }

  static std::string run_dir(const std::string& name) {
    const std::string dir = root_ + "/runs/" + name;
    fs::remove_all(dir);
    return dir;
  }

  static std::vector<MetricsRecord> metrics(const std::string& dir) { return read_metrics(dir + "/metrics.jsonl"); }

  static void expect_same_tensors(const std::string& a, const std::string& b) {
    const auto first = model::read_safetensors(a).tensors;
    const auto second = model::read_safetensors(b).tensors;
    ASSERT_EQ(first.size(), second.size()) << a;
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_EQ(first[i].first, second[i].first);
      EXPECT_TRUE(first[i].second.equal(second[i].second)) << a << ": " << first[i].first;
    }
  }

  static std::unique_ptr<gf::test::TempDir> temp_;
  static std::string root_;
};

std::unique_ptr<gf::test::TempDir> PretrainTest::temp_;
std::string PretrainTest::root_;

TEST_F(PretrainTest, ResumeAfterCrashIsBitwiseExact) {
  const RunConfig config = tiny_config();
  const std::string straight = run_dir("straight");
  PretrainOptions options{straight, "", 6};
  const PretrainResult uninterrupted = pretrain(config, options);
  EXPECT_EQ(uninterrupted.status, PretrainStatus::kMaxSteps);
  EXPECT_EQ(uninterrupted.step, 6);

  // A checkpoint every step, and a crash right after step 3 was logged (before its checkpoint).
  RunConfig every_step = config;
  every_step.train.checkpoint_every_steps = 1;
  const std::string crashed = run_dir("crashed");
  PretrainOptions crashing{crashed, "", 6};
  crashing.on_step = [](const StepView& view) {
    if (view.record.step == 3) throw std::runtime_error("simulated crash");
  };
  EXPECT_THROW(pretrain(every_step, crashing), std::runtime_error);
  EXPECT_EQ(fs::path(latest_checkpoint(crashed)).filename(), "step-00000002");
  EXPECT_EQ(metrics(crashed).size(), 3u);

  const PretrainResult resumed = pretrain(every_step, PretrainOptions{crashed, "auto", 6});
  EXPECT_EQ(resumed.status, PretrainStatus::kMaxSteps);
  EXPECT_EQ(resumed.step, 6);
  EXPECT_EQ(resumed.epoch, 1);  // 4 steps per epoch: step 6 is inside the second epoch

  const auto a = metrics(straight), b = metrics(crashed);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].step, a[i].step);
    EXPECT_EQ(b[i].loss, a[i].loss) << "step " << i + 1;
    EXPECT_EQ(b[i].lr, a[i].lr);
  }
  const std::string final_a = latest_checkpoint(straight), final_b = latest_checkpoint(crashed);
  expect_same_tensors(final_a + "/model.safetensors", final_b + "/model.safetensors");
  expect_same_tensors(final_a + "/optimizer.safetensors", final_b + "/optimizer.safetensors");
  // keep_last (3) applied to the per-step checkpoints.
  EXPECT_EQ(list_checkpoints(crashed).size(), 3u);
  // provenance.json: one session per start, the resumed one from the checkpoint's step.
  const Provenance provenance = read_provenance(crashed + "/provenance.json");
  ASSERT_EQ(provenance.sessions.size(), 2u);
  EXPECT_EQ(provenance.sessions[0].start_step, 0);
  EXPECT_EQ(provenance.sessions[1].start_step, 2);
  EXPECT_EQ(provenance.sessions[1].ranks, 1);
  EXPECT_EQ(provenance.sessions[1].device, "cpu");
  EXPECT_EQ(provenance.sessions[1].backend, "mpi");
  EXPECT_EQ(provenance.sessions[1].libtorch, TORCH_VERSION);
}

TEST_F(PretrainTest, ResumeAcrossALossScaleGrowthIsBitwiseExact) {
  // The published loss scaler with S doubling after every 3rd step: the crash after step 4
  // resumes from step 3's checkpoint (S just doubled, count 0), the one after step 8 from
  // step 7's (count 1, the next doubling after step 9); the scale, its count and the
  // corruption token's carried gradient must come back exactly.
  RunConfig config = tiny_config();
  config.optim.grad_scaler = "published";
  config.optim.grad_scaler_growth_interval = 3;
  const std::string straight = run_dir("scaler_straight");
  pretrain(config, PretrainOptions{straight, "", 10});

  config.train.checkpoint_every_steps = 1;
  const std::string crashed = run_dir("scaler_crashed");
  for (const int64_t crash_at : {4, 8}) {
    PretrainOptions crashing{crashed, "auto", 10};
    crashing.on_step = [crash_at](const StepView& view) {
      if (view.record.step == crash_at) throw std::runtime_error("simulated crash");
    };
    EXPECT_THROW(pretrain(config, crashing), std::runtime_error);
  }
  EXPECT_EQ(fs::path(latest_checkpoint(crashed)).filename(), "step-00000007");
  pretrain(config, PretrainOptions{crashed, "auto", 10});

  const auto a = metrics(straight), b = metrics(crashed);
  ASSERT_EQ(a.size(), 10u);
  ASSERT_EQ(b.size(), 10u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].grad_scale, 65536.0 * (1 << (i / 3))) << "step " << i + 1;
    EXPECT_EQ(b[i].grad_scale, a[i].grad_scale) << "step " << i + 1;
    EXPECT_EQ(b[i].loss, a[i].loss) << "step " << i + 1;
    EXPECT_EQ(b[i].grad_norm, a[i].grad_norm) << "step " << i + 1;
    EXPECT_EQ(b[i].clip_coef, a[i].clip_coef) << "step " << i + 1;
    EXPECT_EQ(b[i].token_grad_norm, a[i].token_grad_norm) << "step " << i + 1;
  }
  const std::string final_a = latest_checkpoint(straight), final_b = latest_checkpoint(crashed);
  expect_same_tensors(final_a + "/model.safetensors", final_b + "/model.safetensors");
  expect_same_tensors(final_a + "/optimizer.safetensors", final_b + "/optimizer.safetensors");
  const Checkpoint last = load_checkpoint(final_b);
  EXPECT_EQ(last.state.grad_scale, 65536.0 * 8);
  EXPECT_EQ(last.state.grad_scale_growth, 1);
  ASSERT_EQ(last.carried_grads.size(), 1u);
  EXPECT_EQ(last.carried_grads[0].first, "corruption_token");
  EXPECT_GT(last.carried_grads[0].second.abs().max().item<double>(), 0);
}

TEST_F(PretrainTest, PublishedScalerScalesOnlyTheTokenGradient) {
  // Step 1 from the same init on the same batch: the same loss and student gradient; the
  // token's gradient is 2^16 times larger (exactly: a power of two) and rules the clip.
  RunConfig none = tiny_config(), published = tiny_config();
  none.optim.grad_scaler = "none";
  published.optim.grad_scaler = "published";
  const std::string a = run_dir("scaler_none"), b = run_dir("scaler_published");
  pretrain(none, PretrainOptions{a, "", 1});
  pretrain(published, PretrainOptions{b, "", 1});
  const MetricsRecord x = metrics(a).at(0), y = metrics(b).at(0);
  EXPECT_EQ(y.loss, x.loss);
  EXPECT_EQ(y.student_grad_norm, x.student_grad_norm);
  EXPECT_EQ(y.token_grad_norm, 65536 * x.token_grad_norm);
  EXPECT_EQ(x.grad_scale, 1.0);
  EXPECT_EQ(y.grad_scale, 65536.0);
  EXPECT_NEAR(y.clip_coef, 0.1 / y.grad_norm, 1e-6 * y.clip_coef);
  EXPECT_GT(y.grad_norm, 100 * x.grad_norm);
}

TEST_F(PretrainTest, KeptLastBatchIsAStepAsPublished) {
  // 9 images in batches of 4: steps of 4, 4 and 1 image per epoch, the single image clean
  // (the global batch's last); with 2 accumulation micro-batches of 2 the same run (the last
  // step is one micro-batch of 1); with drop_last, 2 steps per epoch.
  RunConfig config = tiny_config();
  config.data.path = root_ + "/odd_dataset";
  config.data.batch_size = 4;
  std::vector<std::pair<int64_t, int64_t>> last_step_inputs;  // (images, clean index) of each third step
  PretrainOptions options{run_dir("kept_last"), "", 5};
  options.on_inputs = [&](const StepInputs& in) {
    if (in.step % 3 == 2) last_step_inputs.emplace_back(in.images.size(0), in.clean_index);
  };
  pretrain(config, options);
  const auto kept = metrics(options.run_dir);
  ASSERT_EQ(kept.size(), 5u);
  EXPECT_EQ(kept[2].epoch, 0);
  EXPECT_EQ(kept[3].epoch, 1);
  EXPECT_EQ(last_step_inputs, (std::vector<std::pair<int64_t, int64_t>>{{1, 0}}));

  RunConfig accumulated = config;
  accumulated.train.grad_accum = 2;
  const std::string accum_dir = run_dir("kept_last_accum");
  pretrain(accumulated, PretrainOptions{accum_dir, "", 5});
  const auto a = metrics(accum_dir);
  ASSERT_EQ(a.size(), 5u);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i].loss, kept[i].loss, 1e-5 * kept[i].loss)
        << "step " << i + 1;

  RunConfig dropped = config;
  dropped.data.drop_last = true;
  const std::string drop_dir = run_dir("dropped_last");
  pretrain(dropped, PretrainOptions{drop_dir, "", 3});
  const auto d = metrics(drop_dir);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[2].epoch, 1);
}

TEST_F(PretrainTest, StopSignalCheckpointsAndReportsPreemption) {
  const std::string dir = run_dir("preempted");
  PretrainOptions options{dir, "auto", 0};
  options.on_step = [](const StepView& view) {
    if (view.record.step == 2) std::raise(SIGUSR1);
  };
  // The flag raised after step 2 is agreed over ranks in step 3's all-reduce: stop after step 3.
  const PretrainResult result = pretrain(tiny_config(), options);
  EXPECT_EQ(result.status, PretrainStatus::kPreempted);
  EXPECT_EQ(result.step, 3);
  EXPECT_EQ(fs::path(result.checkpoint).filename(), "step-00000003");
  EXPECT_EQ(kExitPreempted, 75);
  // The requeued job continues from there; max_steps counts the steps done in total.
  const PretrainResult next = pretrain(tiny_config(), PretrainOptions{dir, "auto", 5});
  EXPECT_EQ(next.status, PretrainStatus::kMaxSteps);
  EXPECT_EQ(next.step, 5);
  EXPECT_EQ(metrics(dir).size(), 5u);
  // Asking for fewer steps than are done trains nothing.
  EXPECT_EQ(pretrain(tiny_config(), PretrainOptions{dir, "auto", 4}).step, 5);
}

TEST_F(PretrainTest, NonFiniteLossStopsNamingTheStep) {
  RunConfig config = tiny_config();
  config.optim.lr = 1e30;
  config.optim.warmup_epochs = 0;
  config.train.checkpoint_every_steps = 1;
  const std::string dir = run_dir("nan");
  try {
    pretrain(config, PretrainOptions{dir, "", 0});
    FAIL() << "a diverging run did not stop";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("pretrain: step 2 (epoch 0): loss is"), std::string::npos) << message;
    EXPECT_NE(message.find("step-00000001"), std::string::npos) << message;
  }
  EXPECT_EQ(fs::path(latest_checkpoint(dir)).filename(), "step-00000001");
}

TEST_F(PretrainTest, RefusesACheckpointOfAnotherConfig) {
  const std::string dir = run_dir("mismatch");
  pretrain(tiny_config(), PretrainOptions{dir, "", 1});
  RunConfig other = tiny_config();
  other.model.img_size = 112;
  other.optim.lr = 5e-4;
  try {
    pretrain(other, PretrainOptions{dir, "auto", 2});
    FAIL() << "a mismatching config resumed";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("config differs from the checkpoint's"), std::string::npos) << message;
    EXPECT_NE(message.find("model.img_size: 56 vs 112"), std::string::npos) << message;
    EXPECT_NE(message.find("optim.lr: 0.001 vs 0.0005"), std::string::npos) << message;
  }
  // A fresh run into a folder with checkpoints must say what it wants.
  EXPECT_THROW(pretrain(tiny_config(), PretrainOptions{dir, "", 2}), std::runtime_error);
}

TEST_F(PretrainTest, ResumeChecksTheDatasetAndPassesOverTornCheckpoints) {
  const std::string dir = run_dir("resume_checks");
  RunConfig config = tiny_config();
  ASSERT_EQ(pretrain(config, PretrainOptions{dir, "", 1}).step, 1);
  ASSERT_EQ(load_checkpoint(latest_checkpoint(dir)).state.dataset.value("fingerprint", ""),
            dataset_fingerprint(root_ + "/dataset"));

  // The same packed data in another folder resumes; other data only when asked for.
  const std::string moved = root_ + "/moved_dataset";
  fs::remove_all(moved);
  fs::copy(root_ + "/dataset", moved, fs::copy_options::recursive);
  EXPECT_EQ(dataset_fingerprint(moved), dataset_fingerprint(root_ + "/dataset"));
  config.data.path = moved;
  EXPECT_EQ(pretrain(config, PretrainOptions{dir, "auto", 2}).step, 2);
  config.data.path = root_ + "/odd_dataset";
  const std::string config_before = text_of(dir + "/config.json");
  try {
    pretrain(config, PretrainOptions{dir, "auto", 3});
    FAIL() << "a resume on another dataset was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("step-00000002: dataset fingerprint: found"), std::string::npos) << e.what();
  }
  EXPECT_EQ(text_of(dir + "/config.json"), config_before);  // refused before anything was rewritten
  PretrainOptions allowed{dir, "auto", 3};
  allowed.allow_dataset_change = true;
  EXPECT_EQ(pretrain(config, allowed).step, 3);

  // A torn newest checkpoint is passed over (and said so); with every one torn, auto refuses.
  config.data.path = root_ + "/odd_dataset";
  fs::resize_file(dir + "/checkpoints/step-00000003/model.safetensors", 64);
  EXPECT_EQ(latest_checkpoint(dir), dir + "/checkpoints/step-00000002");
  config.data.path = moved;
  EXPECT_EQ(pretrain(config, PretrainOptions{dir, "auto", 3}).step, 3);
  EXPECT_NE(text_of(dir + "/train.log").find("passed over torn checkpoints newer than"), std::string::npos);
  for (const auto& checkpoint : list_checkpoints(dir)) fs::resize_file(checkpoint + "/optimizer.safetensors", 10);
  try {
    pretrain(config, PretrainOptions{dir, "auto", 4});
    FAIL() << "--resume auto with every checkpoint torn started afresh";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("found \"auto\" and no complete checkpoint, only torn ones ("), std::string::npos)
        << e.what();
  }
}

TEST_F(PretrainTest, CheckpointsWithWeightsThatAreNotFiniteAreNeverGood) {
  const std::string dir = run_dir("nan_weights");
  RunConfig config = tiny_config();
  config.train.checkpoint_every_steps = 1;
  ASSERT_EQ(pretrain(config, PretrainOptions{dir, "", 2}).step, 2);
  // NaN written into the newest checkpoint's weights, its size kept: complete, but not good.
  const std::string newest = dir + "/checkpoints/step-00000002";
  auto weights = model::read_safetensors(newest + "/model.safetensors").tensors;
  weights.front().second.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
  model::write_safetensors(newest + "/model.safetensors", weights, {{"format", "pt"}});
  EXPECT_EQ(latest_checkpoint(dir), newest);
  EXPECT_EQ(last_good_checkpoint(dir), dir + "/checkpoints/step-00000001");
  for (const auto& read : std::vector<std::function<void()>>{[&] { load_checkpoint(newest); },
                                                             [&] { load_checkpoint_weights(newest); },
                                                             [&] { pretrain(config, PretrainOptions{dir, "auto", 3}); }}) {
    try {
      read();
      ADD_FAILURE() << "weights with a NaN were read";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(newest + "/model.safetensors: " + weights.front().first +
                                           ": found 1 of "),
                std::string::npos)
          << e.what();
    }
  }

  // Weights that stop being finite are not saved; the error names the checkpoint before them.
  const std::string poisoned = run_dir("nan_weights_unsaved");
  PretrainOptions options{poisoned, "", 3};
  options.on_step = [](const StepView& view) {
    if (view.record.step != 2) return;
    torch::NoGradGuard no_grad;
    view.student.parameters().front().view(-1)[0] = std::numeric_limits<float>::infinity();
  };
  try {
    pretrain(config, options);
    FAIL() << "weights with an Inf were saved";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("pretrain: step 2's weights: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(0 NaN, 1 Inf), expected finite weights; not saved as a checkpoint, last good "
                                         "checkpoint: " + poisoned + "/checkpoints/step-00000001"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(latest_checkpoint(poisoned), poisoned + "/checkpoints/step-00000001");
}

TEST_F(PretrainTest, TwoRanksMatchOneRank) {
  // The same global batch split over 2 ranks (mpirun + the greenfound binary) gives the
  // same losses and weights as one rank, up to float rounding: draws depend on the sample,
  // not on the rank, and the clean sample is the global batch's last wherever it lives.
  // Second case: 9 images in batches of 4, so step 3 is the kept last batch of 1 image, which
  // rank 1 holds and rank 0 has none of.
  const char* bin = std::getenv("GF_BIN");
  const char* mpiexec = std::getenv("GF_MPIEXEC");
  ASSERT_TRUE(bin != nullptr && mpiexec != nullptr) << "run under ctest (GF_BIN, GF_MPIEXEC)";
  RunConfig odd = tiny_config();
  odd.data.path = root_ + "/odd_dataset";
  odd.data.batch_size = 4;
  for (const auto& [name, config, steps] : {std::make_tuple(std::string("full"), tiny_config(), 3),
                                            std::make_tuple(std::string("kept_last"), odd, 4)}) {
    SCOPED_TRACE(name);
    const std::string one = run_dir(name + "_one_rank"), two = run_dir(name + "_two_ranks");
    pretrain(config, PretrainOptions{one, "", steps});

    const std::string config_path = root_ + "/" + name + ".json", log = root_ + "/" + name + ".log";
    std::ofstream(config_path) << to_json(config).dump(2);
    const std::string command = gf::test::mpiexec() + " -np 2 " + gf::test::greenfound_bin() + " pretrain --config " + config_path +
                                " --run-dir " + two + " --max-steps " + std::to_string(steps) + " > " + log + " 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << std::ifstream(log).rdbuf();

    const auto a = metrics(one), b = metrics(two);
    ASSERT_EQ(a.size(), static_cast<size_t>(steps));
    ASSERT_EQ(b.size(), static_cast<size_t>(steps));
    for (size_t i = 0; i < a.size(); ++i) {
      const double expected = a[i].loss;
      EXPECT_NEAR(b[i].loss, expected, 1e-5 * expected) << "step " << i + 1;
      EXPECT_NEAR(b[i].grad_norm, a[i].grad_norm,
                  1e-4 * a[i].grad_norm);
    }
    const auto wa = model::read_safetensors(latest_checkpoint(one) + "/model.safetensors").tensors;
    const auto wb = model::read_safetensors(latest_checkpoint(two) + "/model.safetensors").tensors;
    ASSERT_EQ(wa.size(), wb.size());
    for (size_t i = 0; i < wa.size(); ++i) {
      // Three Adam steps of lr 1e-3 move a weight by up to 3e-3; rounding-level gradient
      // differences may flip the sign of near-zero moments, so compare against that scale.
      EXPECT_LE((wa[i].second - wb[i].second).abs().max().item<double>(), 1e-4) << wa[i].first;
    }
  }
}

TEST_F(PretrainTest, DemoConfigLossFalls) {
  std::ifstream in(gf::test::source_dir() + "/configs/demo.json");
  json config = json::parse(in);
  config["data"]["path"] = root_ + "/dataset";
  config["model"]["img_size"] = 56;  // the demo recipe on this test's small images
  const std::string dir = run_dir("demo");
  pretrain(parse_run_config(config, "configs/demo.json"), PretrainOptions{dir, "", 16});
  const auto records = metrics(dir);
  ASSERT_EQ(records.size(), 16u);
  const double first = records.front().loss;
  double last = 0;
  for (size_t i = records.size() - 4; i < records.size(); ++i) last += records[i].loss / 4;
  EXPECT_LT(last, 0.8 * first) << "first " << first << ", mean of the last 4 " << last;
  for (const char* file : {"config.json", "train.log", "energy.csv"}) EXPECT_TRUE(fs::exists(dir + "/" + file)) << file;
}

}  // namespace
}  // namespace gf::train
