// `greenfound sweep`, `status` and `report` on a sweep folder: the sweep file expands to
// named runs with their resolved configs (bad values stop it before any run); a sweep
// stopped after its first run, then preempted mid-pretraining (SIGUSR1, as SLURM warns) and
// run again does only the missing work and ends with the same probe results as an
// uninterrupted sweep; a third run does nothing; status shows one line per run; the report's
// numbers are the runs' own files, and it renders in headless Chromium.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "launcher/report_sweep.hpp"
#include "launcher/sweep_plan.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/run_job.hpp"

namespace gf::launcher {
namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::run_job;
using nlohmann::json;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

json tiny_config() {
  return {{"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}, {"init_seed", 1}}},
          {"optim", {{"lr", 1e-3}, {"epochs", 4}, {"cosine_epochs", 4}, {"warmup_epochs", 1}}},
          {"data", {{"batch_size", 8}, {"workers", 1}, {"prefetch", 1}, {"seed", 3}}},
          {"train", {{"threads", 1}, {"log_every", 1}, {"checkpoint_every_epochs", 1}, {"keep_last", 2}, {"device", "cpu"}}},
          {"energy", {{"sample_hz", 20}}}};
}

class SweepFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gf_sweep_plan_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const json& sweep) {
    const std::string path = (dir_ / "sweep.json").string();
    std::ofstream(path) << sweep.dump(2);
    return path;
  }
  fs::path dir_;
};

TEST_F(SweepFile, GridExpandsToNamedRunsWithResolvedConfigs) {
  const json sweep = {{"base", tiny_config()},
                      {"data", "dataset"},
                      {"grid", {{"model.arch", {"vit_tiny_patch14_reg4", "vit_small_patch14_reg4"}},
                                {"data.fraction", {0.5, 1}},
                                {"optim.epochs", {1, 2}}}},
                      {"evaluation", {{{"name", "synth"}, {"tasks", {{{"name", "any_dr"}, {"label", "dr_grade > 0"}}}}}}}};
  const SweepPlan plan = read_sweep(write(sweep));
  ASSERT_EQ(plan.runs.size(), 8u);
  EXPECT_EQ(plan.runs[0].name, "fraction-0.5_arch-vit_tiny_patch14_reg4_epochs-1");
  std::set<std::string> names;
  for (const auto& run : plan.runs) {
    names.insert(run.name);
    EXPECT_EQ(run.config["model"]["arch"], run.assignments["model.arch"]);
    EXPECT_EQ(run.config["data"]["fraction"], run.assignments["data.fraction"]);
    EXPECT_EQ(run.config["optim"]["epochs"], run.assignments["optim.epochs"]);
    EXPECT_EQ(run.config["data"]["path"], (dir_ / "dataset").string());  // relative to the sweep file
    EXPECT_EQ(run.config["model"]["img_size"], 56);                      // the base's
  }
  EXPECT_EQ(names.size(), 8u);
  EXPECT_EQ(plan.evaluation.at(0).data, (dir_ / "dataset").string());
  // The plan survives its sweep.json round trip.
  EXPECT_EQ(plan_to_json(plan_from_json(plan_to_json(plan), "sweep.json")), plan_to_json(plan));
}

TEST_F(SweepFile, BadValuesStopBeforeAnyRun) {
  json sweep = {{"base", tiny_config()},
                {"data", "dataset"},
                {"grid", {{"data.fraction", {0.5, 2}}}},
                {"evaluation", {{{"name", "synth"}, {"tasks", {{{"name", "any_dr"}, {"label", "dr_grade > 0"}}}}}}}};
  EXPECT_NE(gf::test::error_of([&] { read_sweep(write(sweep)); }).find("data.fraction"), std::string::npos);
  sweep.erase("grid");
  sweep["list"] = {{{"name", "a"}, {"optim.epochs", 1}}, {{"name", "a"}, {"optim.epochs", 2}}};
  EXPECT_NE(gf::test::error_of([&] { read_sweep(write(sweep)); }).find("'a' twice"), std::string::npos);
  sweep["list"] = {{{"name", "a"}, {"optim.epochz", 1}}};
  EXPECT_NE(gf::test::error_of([&] { read_sweep(write(sweep)); }).find("epochz"), std::string::npos);
}

TEST(ParetoFrontier, KeepsRunsNoCheaperRunBeats) {
  //                  cost:  1    2    2    3    4    NaN
  const std::vector<double> cost = {1, 2, 2, 3, 4, NAN}, quality = {0.6, 0.7, 0.65, 0.68, 0.9, 0.99};
  EXPECT_EQ(pareto_frontier(cost, quality), (std::vector<bool>{true, true, false, false, true, false}));
}

// A real sweep of two runs on a small synthetic set, ranks 1.
class Sweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("gf_sweep_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static std::string bin() { return gf::test::greenfound_bin(); }
  static std::string path(const std::string& name) { return (root_ / name).string(); }
  static void run_ok(const std::string& command) {
    const JobResult job = run_job(command);
    ASSERT_EQ(job.exit_code, 0) << command << "\n" << job.output;
  }

  static void make_dataset_and_sweep_file() {
    const std::string images = path("images");
    run_ok(bin() + " synth --out " + images + " --n 96 --sites 2 --size 96x96 --seed 2 --threads 1 --quiet");
    run_ok(bin() + " pack --images " + images + " --labels " + images + "/labels.csv --id-column image_id --out " +
           path("dataset") + " --resolution 64 --split-by patient_id --test-fraction 0.3 --seed 2 --threads 1 --quiet");
    const json sweep = {
        {"base", tiny_config()},
        {"data", "dataset"},
        {"list", {{{"name", "half-data"}, {"data.fraction", 0.5}}, {{"name", "all-data"}, {"data.fraction", 1}}}},
        {"evaluation",
         {{{"name", "synth"},
           {"tasks", {{{"name", "any_dr"}, {"label", "dr_grade > 0"}}, {{"name", "quality"}, {"label", "quality"}, {"kind", "binary"}}}}}}}};
    std::ofstream(path("sweep-file.json")) << sweep.dump(2);
  }

  static std::string sweep_cmd(const std::string& out, const std::string& extra = "") {
    return bin() + " sweep " + path("sweep-file.json") + " --out " + path(out) + " --local" + extra;
  }

  static int metrics_lines(const std::string& run_dir) {
    std::ifstream in(run_dir + "/metrics.jsonl");
    int n = 0;
    for (std::string line; std::getline(in, line);) n += json::parse(line, nullptr, false).is_object();
    return n;
  }

  static json probe_results(const std::string& sweep, const std::string& run) {
    return json::parse(read_text(path(sweep + "/runs/" + run + "/probe/synth/results.json")));
  }

  static fs::path root_;
};

fs::path Sweep::root_;

TEST_F(Sweep, InterruptedSweepFinishesOnlyWhatWasMissingWithTheSameResults) {
  ASSERT_NO_FATAL_FAILURE(make_dataset_and_sweep_file());
  // The reference: uninterrupted.
  ASSERT_NO_FATAL_FAILURE(run_ok(sweep_cmd("straight")));

  // Stopped after its first run...
  const JobResult first = run_job(sweep_cmd("stopped", " --max-runs 1"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("--max-runs"), std::string::npos) << first.output;
  const JobResult status = run_job(bin() + " status " + path("stopped"));
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(std::regex_search(status.output, std::regex("half-data +done +step \\d+, epoch 4/4 +mean AUROC 0\\.\\d+ \\[")))
      << status.output;
  EXPECT_TRUE(std::regex_search(status.output, std::regex("all-data +pending +no steps yet"))) << status.output;

  // ...then preempted in the second run's pretraining (SIGUSR1 to the sweep reaches the ranks).
  const std::string second_run = path("stopped/runs/all-data");
  {
    gf::test::BackgroundJob job("exec " + sweep_cmd("stopped"), path("stopped.log"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while (metrics_lines(second_run) < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(metrics_lines(second_run), 3) << "the second run did not start training";
    ASSERT_EQ(kill(job.pid(), SIGUSR1), 0);
    JobResult stopped;
    ASSERT_TRUE(job.wait(120, stopped)) << "the sweep did not stop on SIGUSR1";
    EXPECT_NE(stopped.exit_code, 0) << stopped.output;
    EXPECT_NE(stopped.output.find("half-data: done, skipped"), std::string::npos) << stopped.output;
    EXPECT_NE(stopped.output.find("run the same command again to resume"), std::string::npos) << stopped.output;
  }
  const json state = json::parse(read_text(second_run + "/sweep-state.json"));
  EXPECT_EQ(state["state"], "interrupted") << state.dump();
  EXPECT_EQ(state["done"], json::array()) << state.dump();
  const int logged_before = metrics_lines(second_run);
  ASSERT_LT(logged_before, metrics_lines(path("straight/runs/all-data"))) << "pretraining finished before the signal";

  // Again: the first run is skipped, the second resumes from its checkpoint (no step is
  // logged twice) and finishes.
  const JobResult resumed = run_job(sweep_cmd("stopped"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("half-data: done, skipped"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("all-data: resuming"), std::string::npos) << resumed.output;
  EXPECT_EQ(metrics_lines(second_run), metrics_lines(path("straight/runs/all-data")));
  for (const char* run : {"half-data", "all-data"}) {
    const json a = probe_results("straight", run), b = probe_results("stopped", run);
    ASSERT_EQ(a["results"].size(), b["results"].size()) << run;
    for (size_t i = 0; i < a["results"].size(); ++i) {
      EXPECT_EQ(a["results"][i]["task"], b["results"][i]["task"]);
      EXPECT_DOUBLE_EQ(a["results"][i]["auroc"].get<double>(), b["results"][i]["auroc"].get<double>()) << run << " " << i;
    }
  }
  // A third time there is nothing left to do.
  const JobResult again = run_job(sweep_cmd("stopped"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output.find("greenfound launch"), std::string::npos) << again.output;

  // The report: its numbers are the runs' files, sorted by cost; it renders in Chromium.
  const std::string page = path("sweep-report.html");
  const JobResult report = run_job(bin() + " report " + path("stopped") + " --out " + page);
  ASSERT_EQ(report.exit_code, 0) << report.output;
  const std::string html = read_text(page);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex("<script type=\"application/json\" id=\"sweep-data\">(.*?)</script>")));
  const json data = json::parse(m[1].str());
  ASSERT_EQ(data.size(), 2u);
  for (const auto& run : data) {
    const std::string dir = path("stopped/runs/" + run["name"].get<std::string>());
    // The bill sums every pretrain session's energy.json: the resumed run had two.
    std::vector<json> sessions;
    for (int k = 0; fs::exists(dir + "/energy-sessions/" + std::to_string(k) + ".json"); ++k)
      sessions.push_back(json::parse(read_text(dir + "/energy-sessions/" + std::to_string(k) + ".json")));
    EXPECT_EQ(sessions.size(), run["name"] == "all-data" ? 2u : 1u) << run["name"];
    EXPECT_EQ(run["energy_sessions"], sessions.size());
    for (const char* key : {"flops", "device_hours", "kwh", "cost"}) {
      double sum = 0;
      for (const auto& session : sessions) sum += session[key].get<double>();
      EXPECT_DOUBLE_EQ(run[key].get<double>(), sum) << key;
      EXPECT_GT(sum, 0) << key;
    }
    const json results = json::parse(read_text(dir + "/probe/synth/results.json"));
    double mean = 0;
    for (const auto& r : results["results"]) {
      const json& shown = run["tasks"]["synth/" + r["task"].get<std::string>()];
      EXPECT_EQ(shown["auroc"], r["auroc"]);
      EXPECT_EQ(shown["low"], r["auroc_ci_low"]);
      EXPECT_EQ(shown["high"], r["auroc_ci_high"]);
      mean += r["auroc"].get<double>() / static_cast<double>(results["results"].size());
    }
    EXPECT_NEAR(run["tasks"]["mean over tasks"]["auroc"].get<double>(), mean, 1e-12);
  }
  std::vector<double> costs;
  const std::regex row("<tr data-run=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), row); it != std::sregex_iterator(); ++it)
    for (const auto& run : data)
      if (run["name"] == (*it)[1].str()) costs.push_back(run["cost"].get<double>());
  ASSERT_EQ(costs.size(), 2u);
  EXPECT_LE(costs[0], costs[1]) << "table not sorted by cost";
  EXPECT_NE(html.find("RETFound-MEH ~$10,000"), std::string::npos);
  // The plots' own styles are on the page (without them Chromium fills every frame black).
  EXPECT_NE(html.find(".frame{fill:none"), std::string::npos);
  EXPECT_NE(html.find("Legend: run names."), std::string::npos);

  const std::string screenshot = (fs::current_path() / "sweep-report.png").string();
  fs::remove(screenshot);
  const JobResult check = run_job(gf::test::python() + " " + GF_CHROMIUM_CHECK + " " + GF_CHROMIUM + " " + page + " " +
                                  screenshot + " 2>" + path("chromium.log"));
  ASSERT_EQ(check.exit_code, 0) << check.output << read_text(path("chromium.log"));
  const json seen = json::parse(check.output);
  EXPECT_EQ(seen["console_errors"], json::array()) << seen.dump(1);
  EXPECT_EQ(seen["sections"], json({"frontier", "runs", "tasks", "references"}));
  int frontier_plots = 0;
  for (const auto& plot : seen["plots"]) {
    EXPECT_GT(plot["marks"].get<int>(), 0) << plot.dump();
    frontier_plots += plot["section"] == "frontier";
  }
  EXPECT_EQ(frontier_plots, 4);  // FLOPs, device-hours, kWh, dollars
  EXPECT_GT(fs::exists(screenshot) ? fs::file_size(screenshot) : 0, 10000u);
  std::cout << "screenshot: " << screenshot << "\n";
}

// The README's example sweep (configs/sweep-demo.json) on the README's dataset recipe: it
// expands to its 8 runs, and its two cheapest run here end to end (the whole sweep takes
// ~2 minutes on 2 idle cores; README "Scaling sweeps").
TEST_F(Sweep, ExampleSweepFileRuns) {
  const std::string images = path("example-images"), dataset = path("example-dataset"), out = path("example");
  run_ok(bin() + " synth --out " + images + " --n 240 --sites 2 --quiet");
  run_ok(bin() + " pack --images " + images + " --labels " + images + "/labels.csv --id-column image_id --out " + dataset +
         " --resolution 70 --split-by patient_id --test-fraction 0.3 --quiet");
  const std::string file = gf::test::source_dir() + "/configs/sweep-demo.json";
  const SweepPlan plan = read_sweep(file, dataset);
  ASSERT_EQ(plan.runs.size(), 8u);
  std::set<std::string> archs;
  for (const auto& run : plan.runs) archs.insert(run.config["model"]["arch"].get<std::string>());
  EXPECT_EQ(archs, (std::set<std::string>{"vit_tiny_patch14_reg4", "vit_small_patch14_reg4"}));
  EXPECT_EQ(plan.evaluation.at(0).tasks["tasks"].size(), 6u);

  const JobResult job = run_job(bin() + " sweep " + file + " --data " + dataset + " --out " + out + " --local --max-runs 2");
  ASSERT_EQ(job.exit_code, 0) << job.output;
  const JobResult status = run_job(bin() + " status " + out);
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("total: 2 done 6 pending"), std::string::npos) << status.output;
  EXPECT_TRUE(std::regex_search(status.output, std::regex("fraction-0.5_arch-vit_tiny_patch14_reg4_epochs-2 +done +step \\d+, epoch 2/2 +mean AUROC")))
      << status.output;
  const JobResult report = run_job(bin() + " report " + out + " --out " + path("example.html"));
  ASSERT_EQ(report.exit_code, 0) << report.output;
  EXPECT_NE(read_text(path("example.html")).find("Legend: data.fraction · model.arch · optim.epochs."), std::string::npos);
}

}  // namespace
}  // namespace gf::launcher
