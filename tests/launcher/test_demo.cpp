// `greenfound demo`, the README's first command, on a small synthetic set: every stage runs
// as its CLI command, the probe covers every synthetic task plus the site transfer task, and
// the report and the bill come out where the demo says.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/support/run_job.hpp"

namespace {

namespace fs = std::filesystem;

TEST(Demo, RunsEveryStageAndWritesTheReport) {
  const fs::path out = fs::temp_directory_path() / ("gf_demo_" + std::to_string(getpid()));
  fs::remove_all(out);
  const gf::test::JobResult demo =
      gf::test::greenfound("demo --out " + out.string() + " --images 160 --source-images 80 --ranks 2");
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  for (const char* stage : {"== demo: synth (target", "== demo: synth (source", "--first-site 2", "== demo: pack (target) ==",
                            "== demo: pack (source, no labels) ==", "== demo: teacher (masked pixels on the source set) ==",
                            "== demo: student (Token Reconstruction from the teacher", "greenfound launch -n 2 -- pretrain",
                            "== demo: embed (raw pixels, 16x16) ==", "== demo: embed (random init",
                            "== demo: embed (teacher) ==", "== demo: embed (student) ==", "== demo: probe ==",
                            "Did the student beat its teacher", "student vs teacher: better on ", "pretraining bill: ",
                            "== demo: done in "})
    EXPECT_NE(demo.output.find(stage), std::string::npos) << stage << "\n" << demo.output;
  EXPECT_EQ(demo.output.find("warning"), std::string::npos) << demo.output;

  EXPECT_TRUE(fs::exists(out / "report.html"));
  EXPECT_TRUE(fs::exists(out / "synth-preview.png"));
  EXPECT_TRUE(fs::exists(out / "run" / "energy.json"));
  EXPECT_TRUE(fs::exists(out / "teacher.safetensors"));
  std::ifstream in(out / "run" / "probe" / "results.json");
  const auto results = nlohmann::json::parse(in);
  std::set<std::string> tasks;
  std::set<std::string> models;
  for (const auto& r : results.at("results")) tasks.insert(r.at("task").get<std::string>()), models.insert(r.at("model"));
  EXPECT_EQ(models, (std::set<std::string>{"pixels", "random_init", "teacher", "student"}));
  // probe --versus student teacher: each against the three others on every (task, class).
  std::set<std::string> pairs;
  for (const auto& v : results.at("versus")) {
    pairs.insert(v.at("model").get<std::string>() + ">" + v.at("other").get<std::string>());
    EXPECT_TRUE(v["outcome"] == "better" || v["outcome"] == "worse" || v["outcome"] == "tie") << v.dump();
  }
  EXPECT_EQ(pairs, (std::set<std::string>{"student>pixels", "student>random_init", "student>teacher", "teacher>pixels",
                                          "teacher>random_init", "teacher>student"}));
  EXPECT_EQ(tasks, (std::set<std::string>{"dr_grade", "referable_dr", "any_dr", "macular_edema", "amd", "glaucoma", "quality",
                                          "diabetes", "any_dr_site_A_to_B"}));
  EXPECT_TRUE(results.value("errors", nlohmann::json::array()).empty()) << results["errors"].dump();
  // The transfer task trains on site A only and tests on site B only: together every image.
  for (const auto& r : results["results"])
    if (r["task"] == "any_dr_site_A_to_B") EXPECT_EQ(r.at("n_train").get<int>() + r.at("n_test").get<int>(), 160) << r.dump();
  fs::remove_all(out);
}

}  // namespace
