// JobSpec from JSON layers and the checks made before anything is written or submitted.
#include <gtest/gtest.h>

#include <cstdlib>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "slurm/array_sweep.hpp"
#include "slurm/job_spec.hpp"
#include "slurm/sbatch_script.hpp"

namespace {

using gf::slurm::JobSpec;
namespace fs = std::filesystem;

JobSpec valid_spec() {
  JobSpec spec;
  spec.run_dir = "/runs/a";
  return spec;
}

// The error message of validate(spec), "" when it passes.
std::string validation_error(const JobSpec& spec) {
  try {
    gf::slurm::validate(spec);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(JobSpecValidate, DefaultsPass) { EXPECT_EQ(validation_error(valid_spec()), ""); }

// An explicit ranks-per-node on a GPU job must be one per GPU: the reason names what is wrong.
TEST(JobSpecValidate, ExplicitLayoutUsesEveryGpuOnce) {
  const struct {
    int ranks, gpus;
    std::string error;
  } cases[] = {
      {8, 4, "slurm job: ntasks_per_node: found 8 ranks per node with gpus_per_node 4, expected one rank per GPU (4; leave "
             "ntasks_per_node out for that): ranks would share GPUs (8 ranks on 4 GPUs)"},
      {1, 8, "slurm job: ntasks_per_node: found 1 rank per node with gpus_per_node 8, expected one rank per GPU (8; leave "
             "ntasks_per_node out for that): 7 of 8 GPUs per node would sit idle"},
  };
  for (const auto& c : cases) {
    JobSpec spec = valid_spec();
    spec.ntasks_per_node = c.ranks;
    spec.gpus_per_node = c.gpus;
    EXPECT_EQ(validation_error(spec), c.error);
    EXPECT_THROW(gf::slurm::render_sbatch(spec, {"/bin/true"}), std::runtime_error);
  }
}

// Without an explicit count: one rank per GPU on GPU jobs, one per node on CPU jobs.
TEST(JobSpecValidate, RanksPerNodeDefaultToGpusPerNode) {
  JobSpec spec = valid_spec();
  EXPECT_EQ(spec.ranks_per_node(), 1);
  spec.gpus_per_node = 8;
  spec.nodes = 4;
  EXPECT_EQ(validation_error(spec), "");
  EXPECT_EQ(spec.ranks_per_node(), 8);
  EXPECT_EQ(spec.total_tasks(), 32);
  spec.ntasks_per_node = 8;
  EXPECT_EQ(validation_error(spec), "");
}

TEST(JobSpecValidate, ResourceAndFieldErrors) {
  auto with = [](auto change) {
    JobSpec spec = valid_spec();
    change(spec);
    return validation_error(spec);
  };
  EXPECT_NE(with([](JobSpec& s) { s.nodes = 0; }).find("nodes: found 0, expected at least 1"), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.cpus_per_task = 0; }).find("cpus_per_task: found 0"), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.gpu_type = "a100"; }).find("gpu_type: found \"a100\" with gpus_per_node 0"),
            std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.time = "2h"; }).find("time: found \"2h\", expected HH:MM:SS"), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.time = "00:01:00"; }).find("signal_seconds: found 120 with time 00:01:00"),
            std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.signal = "KILLME"; }).find("signal: found \"KILLME\""), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.signal = "TERM"; }).find("signal: found \"TERM\", expected USR1 or USR2"), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.array = "0-3,x"; }).find("array: found \"0-3,x\""), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.run_dir = "runs/a"; }).find("run_dir: found \"runs/a\", expected an absolute path"),
            std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.run_dir = "/my runs/a"; }).find("run_dir: found \"/my runs/a\""), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.extra_sbatch = {"qos=high"}; }).find("extra_sbatch: found \"qos=high\""),
            std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.environment = {{"OMP_NUM_THREADS", "4"}}; }).find("cpus_per_task to set it"),
            std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.partition = "gpu; rm -rf"; }).find("partition: found"), std::string::npos);
  EXPECT_NE(with([](JobSpec& s) { s.requeue_exit_code = 0; }).find("requeue_exit_code: found 0"), std::string::npos);
  EXPECT_EQ(with([](JobSpec& s) {
              s.gpus_per_node = 8;
              s.ntasks_per_node = 8;
              s.gpu_type = "h100";
              s.array = "1,3,5-7%2";
            }),
            "");
}

// Fields matched with std::regex (one recursion per character) are refused when far too long:
// a 300 KB job_name overflowed the stack of `submit`.
TEST(JobSpecValidate, LongFieldsAreRefusedWithoutOverflowingTheStack) {
  auto with = [](auto change) {
    JobSpec spec = valid_spec();
    change(spec);
    return validation_error(spec);
  };
  const std::string long_name(300000, 'a');
  EXPECT_NE(with([&](JobSpec& s) { s.job_name = long_name; }).find("job_name: found \"aaaa"), std::string::npos);
  EXPECT_NE(with([&](JobSpec& s) { s.job_name = long_name; }).find("..\" (300000 bytes), expected letters"), std::string::npos);
  EXPECT_NE(with([&](JobSpec& s) { s.partition = long_name; }).find("partition: found"), std::string::npos);
  EXPECT_NE(with([&](JobSpec& s) { s.array = std::string(300000, '1'); }).find("array: found"), std::string::npos);
  EXPECT_NE(with([&](JobSpec& s) { s.time = std::string(300000, '1'); }).find("time: found"), std::string::npos);
  EXPECT_NE(with([&](JobSpec& s) { s.environment = {{long_name, "1"}}; }).find("environment: found"), std::string::npos);
  EXPECT_EQ(with([](JobSpec& s) { s.job_name = std::string(1024, 'a'); }), "");  // the limit is no refusal
}

TEST(JobSpecJson, UnknownKeyAndWrongTypeNameTheOrigin) {
  JobSpec spec = valid_spec();
  try {
    gf::slurm::job_spec_layer_from_json({{"gpus", 8}}, "", "site.json");
    FAIL() << "unknown key accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("site.json: gpus: unknown field (misspelt?), expected one of job_name, nodes", 0), 0u)
        << e.what();
  }
  try {
    gf::slurm::job_spec_layer_from_json({{"gpus_per_node", "8"}}, "slurm", "run.json");
    FAIL() << "string accepted as an integer";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "run.json: slurm.gpus_per_node: found \"8\", expected an integer");
  }
  EXPECT_THROW(gf::slurm::job_spec_layer_from_json({{"launcher", "pdsh"}}, "", "x"), std::runtime_error);
  EXPECT_THROW(gf::slurm::job_spec_layer_from_json({{"modules", "cuda"}}, "", "x"), std::runtime_error);
  // A layer replaces only what it names; environment merges key by key.
  spec.environment = {{"A", "1"}};
  const auto layer = gf::slurm::job_spec_layer_from_json({{"nodes", 3}, {"environment", {{"B", 2}}}}, "", "x");
  const int ntasks = spec.ntasks_per_node;
  gf::slurm::apply_layer(spec, layer);
  EXPECT_EQ(spec.nodes, 3);
  EXPECT_EQ(spec.ntasks_per_node, ntasks);
  EXPECT_EQ(spec.environment, (std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(gf::slurm::to_json(layer), nlohmann::json({{"nodes", 3}, {"environment", {{"B", "2"}}}}));
}

TEST(JobSpecJson, SiteFileFromEnvironment) {
  const fs::path site = fs::temp_directory_path() / ("gf_site_" + std::to_string(::getpid()) + ".json");
  std::ofstream(site) << R"({"partition": "batch", "modules": ["openmpi"]})";
  ::setenv("GREENFOUND_SITE", site.c_str(), 1);
  const auto from_env = gf::slurm::resolve_site("");
  ::unsetenv("GREENFOUND_SITE");
  EXPECT_EQ(from_env.values.partition, "batch");
  EXPECT_TRUE(gf::slurm::resolve_site("").given.empty());
  EXPECT_EQ(gf::slurm::resolve_site(site.string()).values.modules.at(0), "openmpi");
  std::ofstream(site) << "{not json";
  EXPECT_THROW(gf::slurm::resolve_site(site.string()), std::runtime_error);
  fs::remove(site);
  EXPECT_THROW(gf::slurm::resolve_site(site.string()), std::runtime_error);
}

TEST(JobSpecTime, SbatchForms) {
  using gf::slurm::parse_time_limit;
  EXPECT_EQ(parse_time_limit("30"), 30 * 60);
  EXPECT_EQ(parse_time_limit("30:15"), 30 * 60 + 15);
  EXPECT_EQ(parse_time_limit("02:00:00"), 2 * 3600);
  EXPECT_EQ(parse_time_limit("1-12"), 36 * 3600);
  EXPECT_EQ(parse_time_limit("1-12:30"), 36 * 3600 + 30 * 60);
  EXPECT_EQ(parse_time_limit("2-00:00:10"), 48 * 3600 + 10);
  EXPECT_THROW(parse_time_limit("1:2:3:4"), std::runtime_error);
  EXPECT_THROW(parse_time_limit(""), std::runtime_error);
}

TEST(ArraySweep, PairsBecomeTasksAndProbeCommands) {
  const fs::path file = fs::temp_directory_path() / ("gf_sweep_" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << R"({
    "models": {"green": "w/green.safetensors", "dinov2": {"weights": "w/dinov2.pth", "img-size": 224}},
    "datasets": {"idrid": "packs/idrid", "brset": {"data": "packs/brset", "split": "all"}}
  })";
  const auto tasks = gf::slurm::load_sweep(file.string(), "/runs/s");
  ASSERT_EQ(tasks.size(), 4u);  // every model x every dataset, keys in sorted order
  EXPECT_EQ(tasks[0].model, "dinov2");
  EXPECT_EQ(tasks[0].dataset, "brset");
  EXPECT_EQ(tasks[0].args, (std::vector<std::string>{"--img-size", "224", "--weights", "w/dinov2.pth", "--data", "packs/brset", "--split",
                                                     "all", "--out", "/runs/s/embeddings/dinov2/brset/embeddings.h5"}));
  EXPECT_EQ(tasks[3].args, (std::vector<std::string>{"--weights", "w/green.safetensors", "--data", "packs/idrid", "--out",
                                                     "/runs/s/embeddings/green/idrid/embeddings.h5"}));
  const auto probes = gf::slurm::probe_commands(tasks, "/opt/gf/greenfound", "/runs/s");
  ASSERT_EQ(probes.size(), 2u);
  EXPECT_EQ(probes[0],
            "/opt/gf/greenfound probe --embeddings dinov2=/runs/s/embeddings/dinov2/brset/embeddings.h5 "
            "green=/runs/s/embeddings/green/brset/embeddings.h5 --tasks auto --out /runs/s/probe/brset");

  std::ofstream(file) << R"({"models": {"a": "a.st"}, "datasets": {"d": "d"}, "pairs": [["a", "e"]]})";
  try {
    gf::slurm::load_sweep(file.string(), "/runs/s");
    FAIL() << "unknown dataset accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ": pairs[0]: dataset \"e\" is not in datasets");
  }
  std::ofstream(file) << R"({"models": {"a": "a.st"}, "datasets": {"d": "d"}, "pairs": [["a", "d"]]})";
  EXPECT_EQ(gf::slurm::load_sweep(file.string(), "/runs/s").size(), 1u);
  fs::remove(file);
}

}  // namespace
