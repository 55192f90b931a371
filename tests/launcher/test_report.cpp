// `greenfound report` on runs the CLI really made: a finished run with probes, a run that
// has not been probed, a run still being written, and two runs side by side. Each page is
// opened in headless Chromium (tests/launcher/chromium_check.py drives it over the DevTools
// protocol): no console errors, no request leaving the file, every section present, every
// plot drew marks the layout engine measured, and a screenshot PNG kept in the build tree.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/run_job.hpp"
#include "train/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::run_job;
using nlohmann::json;

const std::vector<std::string> kSections = {"provenance", "config", "training", "throughput",
                                            "energy",     "cost",   "probe",    "samples"};

std::string bin() { return gf::test::greenfound_bin(); }

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class Report : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("gf_report_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  // Once per suite, in SetUp so a failure fails each test: synthetic images of two sites,
  // a patient-level split, two short pretraining runs (lr 1e-3 and 1e-4), and for the first
  // one the initial and pretrained embeddings and their probes.
  void SetUp() override {
    if (fs::exists(root_ / "ready")) return;
    const std::string images = path("images"), dataset = path("dataset");
    run_ok(bin() + " synth --out " + images + " --n 48 --sites 2 --size 96x96 --seed 2 --threads 1 --quiet");
    run_ok(bin() + " pack --images " + images + " --labels " + images + "/labels.csv --id-column image_id --out " + dataset +
           " --resolution 64 --split-by patient_id --test-fraction 0.3 --seed 2 --threads 1 --quiet");
    for (const auto& [name, lr] : {std::pair<std::string, double>{"lr-high", 1e-3}, {"lr-low", 1e-4}}) {
      const json config = {
          {"description", "report test run, lr " + std::to_string(lr)},
          {"model", {{"arch", "vit_tiny_patch14_reg4"}, {"img_size", 56}, {"init_seed", 1}}},
          {"optim", {{"lr", lr}, {"epochs", 3}, {"cosine_epochs", 3}, {"warmup_epochs", 1}}},
          {"data", {{"path", dataset}, {"batch_size", 8}, {"workers", 1}, {"prefetch", 1}, {"seed", 3}}},
          {"train", {{"threads", 1}, {"log_every", 1}, {"checkpoint_every_epochs", 3}, {"keep_last", 1}}},
          {"energy", {{"sample_hz", 20}}},
      };
      std::ofstream(path(name + ".json")) << config.dump(2);
      run_ok(bin() + " pretrain --config " + path(name + ".json") + " --run-dir " + path(name));
    }
    const std::string common = " --data " + dataset + " --split all --img-size 56 --threads 1 --workers 1 --no-energy";
    run_ok(bin() + " embed --arch vit_tiny_patch14_reg4 --init-seed 1 --out " + path("initial.h5") + common);
    run_ok(bin() + " embed --checkpoint " + gf::train::latest_checkpoint(path("lr-high")) + " --out " + path("pretrained.h5") + common);
    const json tasks = {{"tasks",
                         {{{"name", "any_dr"}, {"label", "dr_grade > 0"}},
                          {{"name", "quality"}, {"label", "quality"}, {"kind", "binary"}}}}};
    std::ofstream(path("tasks.json")) << tasks.dump();
    run_ok(bin() + " probe --embeddings initial=" + path("initial.h5") + " pretrained=" + path("pretrained.h5") +
           " --tasks " + path("tasks.json") + " --bootstrap 50 --out " + path("lr-high/probe") + " --no-energy");
    if (!HasFailure()) std::ofstream(root_ / "ready") << "ok";  // a failed step fails this test; the next retries
  }

  static std::string path(const std::string& name) { return (root_ / name).string(); }

  // Complete records in a run's metrics.jsonl: the points a curve of it must show.
  static int logged_steps(const std::string& run_dir) {
    std::ifstream in(run_dir + "/metrics.jsonl");
    int n = 0;
    for (std::string line; std::getline(in, line);) n += json::parse(line, nullptr, false).is_object();
    return n;
  }

  static void run_ok(const std::string& command) {
    const JobResult job = run_job(command);
    ASSERT_EQ(job.exit_code, 0) << command << "\n" << job.output;
  }

  // Writes the report of `runs` and returns what Chromium saw; the screenshot stays in the
  // test's build folder for a person to look at.
  static json report_in_chromium(const std::string& runs, const std::string& name, std::string* html = nullptr) {
    const std::string page = path(name + ".html");
    const JobResult report = run_job(bin() + " report " + runs + " --out " + page);
    EXPECT_EQ(report.exit_code, 0) << report.output;
    if (html) *html = read_text(page);
    const std::string chromium = GF_CHROMIUM;
    EXPECT_TRUE(fs::exists(chromium)) << "chromium not found (scripts/install-deps.sh installs Debian's chromium)";
    const std::string screenshot = (fs::current_path() / (name + ".png")).string();
    fs::remove(screenshot);
    const JobResult check = run_job(gf::test::python() + " " + GF_CHROMIUM_CHECK + " " + chromium +
                                    " " + page + " " + screenshot + " 2>" + path(name + ".chromium.log"));
    EXPECT_EQ(check.exit_code, 0) << check.output << read_text(path(name + ".chromium.log"));
    const json seen = json::parse(check.output, nullptr, false);
    EXPECT_TRUE(seen.is_object()) << check.output;
    EXPECT_GT(fs::exists(screenshot) ? fs::file_size(screenshot) : 0, 10000u) << screenshot;
    std::cout << "screenshot: " << screenshot << "\n";
    return seen.is_object() ? seen : json::object();
  }

  // What every page must satisfy, whatever the runs hold.
  static void expect_clean_page(const json& seen) {
    EXPECT_EQ(seen.value("console_errors", json::array()), json::array()) << seen.dump(1);
    EXPECT_EQ(seen.value("network_requests", json::array()), json::array());
    EXPECT_EQ(seen.value("external", -1), 0) << "external scripts, styles or images";
    EXPECT_EQ(seen.value("sections", json::array()), json(kSections));
    for (const auto& plot : seen.value("plots", json::array())) {
      EXPECT_GT(plot.value("data_points", 0), 0) << plot.dump();
      EXPECT_GT(plot.value("marks", 0), 0) << "drew nothing: " << plot.dump();
      EXPECT_GT(plot.value("width", 0.0), 200.0) << plot.dump();
    }
  }

  static std::vector<std::string> plot_titles(const json& seen, const std::string& section) {
    std::vector<std::string> titles;
    for (const auto& plot : seen.value("plots", json::array()))
      if (plot.value("section", "") == section) titles.push_back(plot.value("title", ""));
    return titles;
  }

  static fs::path root_;
};
fs::path Report::root_;

TEST_F(Report, FinishedRunShowsEverySectionWithData) {
  std::string html;
  const json seen = report_in_chromium(path("lr-high"), "report-finished", &html);
  expect_clean_page(seen);
  EXPECT_EQ(plot_titles(seen, "training"), (std::vector<std::string>{"Token Reconstruction loss", "Learning rate"}));
  EXPECT_EQ(plot_titles(seen, "throughput").size(), 2u);
  EXPECT_EQ(plot_titles(seen, "energy").size(), 2u);  // power per device, energy by phase
  EXPECT_EQ(plot_titles(seen, "probe"), (std::vector<std::string>{"AUROC by task · lr-high"}));
  const int steps = logged_steps(path("lr-high"));
  EXPECT_GE(steps, 6);  // 3 epochs, logged every step
  for (const auto& plot : seen["plots"])
    if (plot["title"] == "Token Reconstruction loss") EXPECT_EQ(plot["data_points"], steps);
  // Probe table: both models on both tasks, with intervals, and the wins table.
  for (const char* text : {"<th>initial</th>", "<th>pretrained</th>", ">any_dr<", ">quality<", "significant wins"})
    EXPECT_NE(html.find(text), std::string::npos) << text;
  // The sample grid decoded: 4 images wide, clean above corrupted.
  ASSERT_EQ(seen["images"].size(), 1u);
  EXPECT_EQ(seen["images"][0]["width"], 4 * 56 + 3 * 6);
  EXPECT_EQ(seen["images"][0]["height"], 2 * 56 + 6);
  EXPECT_NE(html.find("LibTorch "), std::string::npos);  // provenance names the libraries
  // The run's own session (provenance.json), not only this report's build.
  EXPECT_NE(html.find("<td>lr-high</td><td>20"), std::string::npos);
  EXPECT_NE(html.find("<td>1 × 1</td><td>cpu</td><td>mpi</td>"), std::string::npos);
}

TEST_F(Report, RunWithoutProbeSaysSo) {
  std::string html;
  const json seen = report_in_chromium(path("lr-low"), "report-partial", &html);
  expect_clean_page(seen);
  EXPECT_NE(html.find("No probe results yet"), std::string::npos);
  EXPECT_TRUE(plot_titles(seen, "probe").empty());
  EXPECT_EQ(plot_titles(seen, "training").size(), 2u);
}

TEST_F(Report, RunInProgressShowsWhatExists) {
  // A copy caught mid-run: no energy.json or probe yet, torn last lines in the logs.
  const fs::path live = path("live");
  fs::remove_all(live);
  fs::create_directories(live);
  for (const char* file : {"config.json", "metrics.jsonl", "energy.csv"}) fs::copy_file(path("lr-low") + "/" + file, live / file);
  std::ofstream(live / "metrics.jsonl", std::ios::app) << R"({"step":13,"loss":0.)";
  std::ofstream(live / "energy.csv", std::ios::app) << "1700000000.5,0,host";
  std::string html;
  const json seen = report_in_chromium(live.string(), "report-in-progress", &html);
  expect_clean_page(seen);
  for (const auto& plot : seen["plots"])
    if (plot["title"] == "Token Reconstruction loss")
      EXPECT_EQ(plot["data_points"], logged_steps(path("lr-low"))) << "the torn line is skipped";
  // The bill and the phases need energy.json: their cells are empty and the chart a note, not invented.
  EXPECT_NE(html.find("<td>cost (USD)</td><td>–</td>"), std::string::npos);
  EXPECT_NE(html.find("Energy by phase · live: no data yet"), std::string::npos);
}

TEST_F(Report, TwoRunsSideBySide) {
  std::string html;
  const json seen = report_in_chromium(path("lr-high") + " " + path("lr-low"), "report-two-runs", &html);
  expect_clean_page(seen);
  // Shared plots carry one line per run; per-run plots come once per run.
  for (const auto& plot : seen["plots"]) {
    const std::string title = plot["title"];
    if (title == "Token Reconstruction loss" || title == "Learning rate" || title == "Training throughput")
      EXPECT_EQ(plot["lines"], 2) << title;
    if (title == "Token Reconstruction loss")
      EXPECT_EQ(plot["data_points"], logged_steps(path("lr-high")) + logged_steps(path("lr-low")));
  }
  EXPECT_EQ(plot_titles(seen, "energy").size(), 4u);
  EXPECT_EQ(plot_titles(seen, "throughput").size(), 3u);
  EXPECT_EQ(seen["images"].size(), 2u);
  EXPECT_NE(html.find("<th>lr-high</th><th>lr-low</th>"), std::string::npos) << "the bill compares both runs";
  EXPECT_NE(html.find("greenfound report · lr-high vs lr-low"), std::string::npos);
}

// `status` reads the same files through the same typed readers; a wrongly typed file stops
// both commands with one line naming the file and the field.
TEST_F(Report, StatusAndReportNameAWronglyTypedField) {
  const JobResult status = run_job(bin() + " status " + path("lr-low"));
  EXPECT_EQ(status.exit_code, 0) << status.output;
  const std::string steps = std::to_string(logged_steps(path("lr-low")));
  EXPECT_NE(status.output.find("progress: step " + steps + "/" + steps + ", epoch 3/3"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("energy so far: "), std::string::npos) << status.output;

  const fs::path broken = path("broken");
  fs::remove_all(broken);
  fs::create_directories(broken);
  for (const char* file : {"config.json", "energy.csv"}) fs::copy_file(path("lr-low") + "/" + file, broken / file);
  std::ifstream in(path("lr-low") + "/metrics.jsonl");
  std::ofstream out(broken / "metrics.jsonl");
  std::string line;
  for (int i = 1; std::getline(in, line); ++i) {
    json record = json::parse(line);
    if (i == 2) record["loss"] = "nan";
    out << record.dump() << "\n";
  }
  out.close();
  const std::string expected = (broken / "metrics.jsonl").string() + ": record 2: loss: found \"nan\", expected a number";
  for (const std::string command : {" status " + broken.string(), " report " + broken.string() + " --out " + path("broken.html")}) {
    const JobResult job = run_job(bin() + command);
    EXPECT_NE(job.exit_code, 0) << command << job.output;
    EXPECT_NE(job.output.find(expected), std::string::npos) << command << job.output;
  }
}

TEST_F(Report, MissingRunFolderIsOneClearError) {
  const JobResult report = run_job(bin() + " report " + path("no-such-run") + " --out " + path("never.html"));
  EXPECT_NE(report.exit_code, 0);
  EXPECT_NE(report.output.find(path("no-such-run") + ": not a run folder"), std::string::npos) << report.output;
  EXPECT_FALSE(fs::exists(path("never.html")));
}

}  // namespace
