// RunConfig: published defaults, one-sentence validation errors naming field, value and
// expectation, the JSON round trip, and the identity fields a resume must agree on.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "base/json_reader.hpp"
#include "tests/support/environment.hpp"
#include "train/run_config.hpp"

namespace gf::train {
namespace {

using nlohmann::json;

// The message parse_run_config throws for `config`, "" when it parses.
std::string error_of(const json& config) {
  try {
    parse_run_config(config, "test.json");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, DefaultsArePublishedRecipe) {
  const RunConfig c = parse_run_config(json::object());
  EXPECT_EQ(c.model.arch, "vit_small_patch14_reg4");
  EXPECT_EQ(c.model.img_size, 392);
  EXPECT_DOUBLE_EQ(c.objective.max_corruption_ratio, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.objective.pixel_noise_scale, 0.2);
  EXPECT_DOUBLE_EQ(c.objective.projector_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.objective.projector_layer_scale_init, 1e-5);
  EXPECT_TRUE(c.objective.last_sample_clean);
  EXPECT_FALSE(c.objective.train_corruption_token);
  EXPECT_DOUBLE_EQ(c.optim.lr, 5e-5);
  EXPECT_DOUBLE_EQ(c.optim.beta1, 0.9);
  EXPECT_DOUBLE_EQ(c.optim.beta2, 0.99);
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 1e-4);
  EXPECT_TRUE(c.optim.decay_tokens);
  EXPECT_DOUBLE_EQ(c.optim.clip_grad_norm, 0.1);
  EXPECT_EQ(c.optim.epochs, 120);
  EXPECT_EQ(c.optim.cosine_epochs, 100);
  EXPECT_EQ(c.optim.warmup_epochs, 10);
  EXPECT_DOUBLE_EQ(c.optim.warmup_lr, 5e-9);
  EXPECT_DOUBLE_EQ(c.optim.min_lr, 5e-9);
  EXPECT_EQ(c.optim.grad_scaler, "published");
  EXPECT_EQ(c.optim.grad_scaler_init_scale, 65536.0);
  EXPECT_EQ(c.optim.grad_scaler_growth_interval, 2000);
  EXPECT_EQ(c.data.batch_size, 128);
  EXPECT_FALSE(c.data.drop_last);  // the DataLoader's default: 586 steps per epoch of 75,000
  EXPECT_DOUBLE_EQ(c.dist.bucket_mb, 25);
}

// configs/<name> of the checkout.
RunConfig repo_config(const std::string& name) {
  return parse_run_config(gf::base::load_json_file(gf::test::source_dir() + "/configs/" + name), "configs/" + name);
}

TEST(RunConfig, PaperConfigIsThePublishedRun) {
  const RunConfig paper = repo_config("paper.json");
  // Every identity field equals the published default, except the init weights file.
  auto expected = identity_fields(parse_run_config(json::object()));
  auto actual = identity_fields(paper);
  EXPECT_FALSE(actual.at("model.init").get<std::string>().empty());
  expected.erase("model.init");
  actual.erase("model.init");
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(paper.optim.grad_scaler, "published");

  // The clean variant differs in the loss scaler alone.
  const RunConfig clean = repo_config("paper-clean.json");
  const auto differences = identity_differences(identity_fields(paper), identity_fields(clean));
  ASSERT_EQ(differences.size(), 1u);
  EXPECT_EQ(differences[0], "optim.grad_scaler: \"published\" vs \"none\"");
  json paper_json = to_json(paper), clean_json = to_json(clean);
  for (json* j : {&paper_json, &clean_json}) j->erase("description"), (*j)["optim"].erase("grad_scaler");
  EXPECT_EQ(paper_json, clean_json);
}

TEST(RunConfig, RoundTripsThroughJson) {
  json config = {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 112}, {"init_seed", 3}}},
                 {"optim", {{"lr", 1e-3}, {"decay_tokens", false}}},
                 {"data", {{"path", "/data/x"}, {"batch_size", 16}}},
                 {"train", {{"grad_accum", 2}, {"precision", "fp32"}}},
                 {"energy", {{"pue", 1.2}}},
                 {"slurm", {{"partition", "gpu"}}}};
  const RunConfig parsed = parse_run_config(config);
  const json written = to_json(parsed);
  EXPECT_EQ(to_json(parse_run_config(written)), written);
  EXPECT_EQ(written.at("energy").at("pue"), 1.2);
  EXPECT_EQ(written.at("slurm"), json({{"partition", "gpu"}}));  // only what the file names
  EXPECT_EQ(parsed.slurm.values.partition, "gpu");
  EXPECT_EQ(parsed.train.precision, Precision::kFp32);
  EXPECT_DOUBLE_EQ(parsed.energy.pue, 1.2);
  EXPECT_EQ(written.at("train").at("grad_accum"), 2);
  // A run folder's config.json (the resolved config plus its hash) is itself a valid config.
  json run_folder_config = written;
  run_folder_config["config_hash"] = config_hash(parsed);
  EXPECT_EQ(to_json(parse_run_config(run_folder_config)), written);
}

TEST(RunConfig, ErrorsNameFieldValueAndExpectation) {
  EXPECT_EQ(error_of({{"optim", {{"lr", -1}}}}), "test.json: optim.lr: found -1, expected a number > 0");
  EXPECT_EQ(error_of({{"optim", {{"lr", "fast"}}}}), "test.json: optim.lr: found \"fast\", expected a number");
  EXPECT_EQ(error_of({{"model", {{"img_size", 100}}}}),
            "test.json: model.img_size: found 100, expected a positive multiple of the patch size 14 up to 4480");
  EXPECT_EQ(error_of({{"data", {{"batch_size", 10}}}, {"train", {{"grad_accum", 4}}}}),
            "test.json: data.batch_size: found 10, expected a multiple of train.grad_accum (4)");
  EXPECT_EQ(error_of({{"train", {{"precision", "fp16"}}}}),
            "test.json: train.precision: found \"fp16\", expected auto, bf16 or fp32");
  EXPECT_EQ(error_of({{"dist", {{"backend", "gloo"}}}}),
            "test.json: dist.backend: found \"gloo\", expected auto, mpi or nccl");
  EXPECT_EQ(error_of({{"objective", {{"max_corruption_ratio", 1.5}}}}),
            "test.json: objective.max_corruption_ratio: found 1.5, expected a ratio in [0, 1]");
  EXPECT_EQ(error_of({{"train", {{"grad_accum", 1.5}}}}),
            "test.json: train.grad_accum: found 1.5, expected an integer");
  EXPECT_EQ(error_of({{"data", {{"bach_size", 8}}}}),
            "test.json: data.bach_size: unknown field (misspelt?), expected one of path, split, fraction, batch_size, drop_last, workers, "
            "prefetch, seed or augment");
  EXPECT_EQ(error_of({{"optimizer", json::object()}}).rfind("test.json: optimizer: unknown field (misspelt?)", 0), 0u);
  EXPECT_EQ(error_of({{"slurm", {{"gpus", 8}}}}).rfind("test.json: slurm.gpus: unknown field (misspelt?)", 0), 0u);
  EXPECT_EQ(error_of({{"slurm", {{"nodes", "2"}}}}), "test.json: slurm.nodes: found \"2\", expected an integer");
  EXPECT_EQ(error_of({{"model", 3}}), "test.json: model: found 3, expected a JSON object");
  EXPECT_EQ(error_of({{"energy", {{"pue", 0.5}}}}).rfind("test.json: energy.pue: found 0.5", 0), 0u)
      << error_of({{"energy", {{"pue", 0.5}}}});
  EXPECT_EQ(error_of({{"optim", {{"grad_scaler", "dynamic"}}}}),
            "test.json: optim.grad_scaler: found \"dynamic\", expected none or published");
  EXPECT_EQ(error_of({{"optim", {{"grad_scaler_init_scale", 1000}}}}),
            "test.json: optim.grad_scaler_init_scale: found 1000, expected a power of two within float range");
  EXPECT_EQ(error_of({{"optim", {{"grad_scaler_growth_interval", 0}}}}),
            "test.json: optim.grad_scaler_growth_interval: found 0, expected an integer >= 1");
  EXPECT_EQ(error_of({{"model", {{"init_seed", -1}}}}),
            "test.json: model.init_seed: found -1, expected a non-negative integer");
}

TEST(RunConfig, IdentityNamesTheFieldsThatDiffer) {
  RunConfig a = parse_run_config(json::object());
  RunConfig b = a;
  EXPECT_EQ(config_hash(a), config_hash(b));
  // Operational fields may change between a run and its resumption.
  b.train.log_every = 1;
  b.data.workers = 2;
  b.data.path = "/elsewhere";
  b.dist.backend = dist::Backend::kMpi;
  EXPECT_EQ(config_hash(a), config_hash(b));
  EXPECT_TRUE(identity_differences(identity_fields(a), identity_fields(b)).empty());

  b.model.img_size = 224;
  b.model.arch = "vit_base_patch14_reg4";
  EXPECT_NE(config_hash(a), config_hash(b));
  const auto differences = identity_differences(identity_fields(a), identity_fields(b));
  ASSERT_EQ(differences.size(), 2u);
  EXPECT_EQ(differences[0], "model.arch: \"vit_small_patch14_reg4\" vs \"vit_base_patch14_reg4\"");
  EXPECT_EQ(differences[1], "model.img_size: 392 vs 224");
}

// data.fraction: a subset changes the data stream, so it is part of the identity; 1 (the
// default) leaves the identity, and so every earlier checkpoint's hash, as it was.
TEST(RunConfig, DataFractionIsValidatedAndJoinsTheIdentityOnlyBelowOne) {
  const RunConfig all = parse_run_config(json::object());
  EXPECT_EQ(all.data.fraction, 1.0);
  EXPECT_FALSE(identity_fields(all).contains("data.fraction"));
  const RunConfig half = parse_run_config({{"data", {{"fraction", 0.5}}}});
  EXPECT_EQ(identity_differences(identity_fields(all), identity_fields(half)),
            std::vector<std::string>{"data.fraction: absent vs 0.5"});
  EXPECT_EQ(error_of({{"data", {{"fraction", 0}}}}), "test.json: data.fraction: found 0, expected a number in (0, 1]");
  EXPECT_EQ(error_of({{"data", {{"fraction", 1.5}}}}), "test.json: data.fraction: found 1.5, expected a number in (0, 1]");
}

}  // namespace
}  // namespace gf::train
