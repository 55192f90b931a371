// Outputs never replace inputs or finished work (issue 15, data loss), through the greenfound
// binary as a user runs it: `pack` into a folder holding other work, --out naming an input of
// embed, export, probe, report, sweep and pack (as written, as ./x, through a symlink), and a
// `pretrain --resume` that fails. Each refusal is one line, a non-zero exit, and every file
// that existed before is byte-identical after. `pack --overwrite` replaces a dataset whole, and
// one killed with SIGKILL leaves the old dataset verifying and resumes when run again.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "base/sha256.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using Snapshot = std::map<std::string, std::string>;  // relative path -> sha256

// Every regular file under `root` with its sha256.
Snapshot snapshot(const fs::path& root) {
  Snapshot files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = gf::base::sha256_file(e.path().string());
  return files;
}

// The files added, removed or changed from `before` to `after`.
std::vector<std::string> changed(const Snapshot& before, const Snapshot& after) {
  std::vector<std::string> names;
  for (const auto& [name, sha] : before)
    if (!after.count(name) || after.at(name) != sha) names.push_back(name);
  for (const auto& [name, sha] : after)
    if (!before.count(name)) names.push_back(name + " (new)");
  return names;
}

int lines(const std::string& text) {
  const auto n = std::count(text.begin(), text.end(), '\n');
  return static_cast<int>(n) + (!text.empty() && text.back() != '\n' ? 1 : 0);
}

class OutputsNeverReplaceInputs : public ::testing::Test {
 protected:
  // Once per suite: synthetic images, a packed dataset, a short pretraining run with one
  // checkpoint and its exported encoder.
  static void SetUpTestSuite() {
    root_ = std::make_unique<gf::test::TempDir>("outputs");
    const JobResult setup = run(
        "synth --out images --n 24 --sites 2 --size 96x96 --seed 2 --threads 1 --quiet && " + bin() +
        " pack --images images --labels images/labels.csv --id-column image_id --out dataset --resolution 64"
        " --threads 1 --quiet && " +
        bin() + " pretrain --config run.json --run-dir run && " + bin() + " export --checkpoint " + checkpoint() +
        " --out weights.safetensors");
    setup_output_ = setup.output;
    setup_ok_ = setup.exit_code == 0;
  }
  static void TearDownTestSuite() { root_.reset(); }

  void SetUp() override { ASSERT_TRUE(setup_ok_) << setup_output_; }

  static std::string bin() { return gf::test::greenfound_bin(); }
  static std::string path(const std::string& name) { return *root_ / name; }
  // `greenfound <args>` run in the suite's folder, so relative paths are relative to it.
  static JobResult run(const std::string& args) {
    if (!fs::exists(path("run.json"))) {
      std::ofstream(path("run.json"))
          << R"({"model": {"arch": "vit_tiny_patch14_reg4", "img_size": 56, "init_seed": 1},
 "optim": {"lr": 1e-3, "epochs": 1, "cosine_epochs": 1, "warmup_epochs": 0},
 "data": {"path": "dataset", "batch_size": 8, "workers": 1, "prefetch": 1, "seed": 3},
 "train": {"threads": 1, "log_every": 1, "checkpoint_every_epochs": 1, "keep_last": 1},
 "energy": {"sample_hz": 20}})";
    }
    return gf::test::run_job("cd '" + root_->str() + "' && " + bin() + " " + args);
  }
  static std::string checkpoint() { return "run/checkpoints/step-00000003"; }

  // `args` fails with one line holding every one of `expected`, and no file changed.
  static void expect_refused(const std::string& args, const std::vector<std::string>& expected) {
    const Snapshot before = snapshot(root_->path());
    const JobResult r = run(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_EQ(lines(r.output), 1) << args << "\n" << r.output;
    for (const auto& text : expected) EXPECT_NE(r.output.find(text), std::string::npos) << text << " in\n" << r.output;
    EXPECT_EQ(changed(before, snapshot(root_->path())), std::vector<std::string>{}) << args;
  }

  static std::unique_ptr<gf::test::TempDir> root_;
  static std::string setup_output_;
  static bool setup_ok_;
};

std::unique_ptr<gf::test::TempDir> OutputsNeverReplaceInputs::root_;
std::string OutputsNeverReplaceInputs::setup_output_;
bool OutputsNeverReplaceInputs::setup_ok_ = false;

TEST_F(OutputsNeverReplaceInputs, PackRefusesAFolderHoldingOtherWork) {
  // A dataset of other options.
  expect_refused("pack --images images --labels images/labels.csv --id-column image_id --out dataset --resolution 48 "
                 "--threads 1 --quiet",
                 {"--out: found dataset holding a dataset packed from other inputs or options (manifest.json)",
                  "expected an empty or new folder, or overwrite to replace it"});
  // A folder of someone else's files.
  fs::create_directories(path("notes"));
  std::ofstream(path("notes/todo.txt")) << "keep me\n";
  expect_refused("pack --images images --out notes --resolution 48 --threads 1 --quiet",
                 {"--out: found notes holding 1 file(s) pack did not write (todo.txt)"});
  // An unfinished pack of other inputs: finished shards recorded in pack-state.json.
  fs::create_directories(path("unfinished"));
  std::ofstream(path("unfinished/pack-state.json")) << R"({"plan_sha256": "other", "shards": []})";
  expect_refused("pack --images images --out unfinished --resolution 48 --threads 1 --quiet",
                 {"holding an unfinished pack of other inputs or options (pack-state.json)"});
}

TEST_F(OutputsNeverReplaceInputs, PackOfTheSameInputsIsNotRefused) {
  const Snapshot before = snapshot(path("dataset"));
  const JobResult r = run("pack --images images --labels images/labels.csv --id-column image_id --out ./dataset "
                          "--resolution 64 --threads 1 --quiet");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("kept 1 finished shard(s)"), std::string::npos) << r.output;
  EXPECT_EQ(changed(before, snapshot(path("dataset"))), std::vector<std::string>{});
}

TEST_F(OutputsNeverReplaceInputs, PackOutMayNotBeOrHoldItsInputs) {
  expect_refused("pack --images images --out ./images --resolution 48 --overwrite --quiet",
                 {"pack: --out ./images is the input --images images; expected a different folder"});
  expect_refused("pack --images images/../images --out . --resolution 48 --overwrite --quiet",
                 {"pack: --out . holds the input --images images/../images; expected a folder outside it"});
  fs::create_directories(path("labels-home"));
  fs::copy_file(path("images/labels.csv"), path("labels-home/labels.csv"));
  expect_refused("pack --images images --labels labels-home/labels.csv --id-column image_id --out labels-home "
                 "--overwrite --quiet",
                 {"pack: --out labels-home holds the input --labels labels-home/labels.csv"});
}

TEST_F(OutputsNeverReplaceInputs, ExportAndEmbedRefuseAnOutThatIsAnInput) {
  fs::create_symlink(path("weights.safetensors"), path("weights-link.safetensors"));
  expect_refused("export --weights weights.safetensors --out weights.safetensors",
                 {"export: --out weights.safetensors is the input --weights weights.safetensors; expected a different "
                  "file"});
  expect_refused("export --weights weights.safetensors --out ./weights-link.safetensors",
                 {"export: --out ./weights-link.safetensors is the input --weights weights.safetensors"});
  expect_refused("export --checkpoint " + checkpoint() + " --out " + checkpoint() + "/model.safetensors",
                 {"export: --out " + checkpoint() + "/model.safetensors lies inside the input --checkpoint " +
                  checkpoint() + "; expected a path outside it"});
  const std::string common = " --data dataset --img-size 56 --threads 1 --workers 1 --no-energy";
  expect_refused("embed --checkpoint " + checkpoint() + " --out ./" + checkpoint() + common,
                 {"embed: --out ./" + checkpoint() + " is the input --checkpoint " + checkpoint() +
                  "; expected a different file"});
  expect_refused("embed --weights weights.safetensors --out weights-link.safetensors" + common,
                 {"embed: --out weights-link.safetensors is the input --weights weights.safetensors"});
  expect_refused("embed --weights weights.safetensors --out dataset/shard-00000.h5" + common,
                 {"embed: --out dataset/shard-00000.h5 lies inside the input --data dataset"});
}

TEST_F(OutputsNeverReplaceInputs, ProbeReportAndSweepRefuseAnOutThatIsAnInput) {
  fs::create_directories(path("probe"));
  std::ofstream(path("probe/results.json")) << R"({"tasks": [{"name": "t", "label": "quality"}]})";
  std::ofstream(path("e.h5")) << "embeddings";
  expect_refused("probe --embeddings m=e.h5 --out e.h5 --no-energy",
                 {"probe: --out e.h5 is the input --embeddings e.h5; expected a different folder"});
  expect_refused("probe --embeddings m=e.h5 --tasks probe/results.json --out probe --no-energy",
                 {"probe: --out probe/results.json is the input --tasks probe/results.json"});
  expect_refused("report run --out ./run", {"report: --out ./run is the input run folder run; expected a different file"});
  expect_refused("report run --out run/config.json",
                 {"report: --out run/config.json is a file of the input run folder run; expected a new file or an "
                  "earlier report (.html)"});
  fs::create_directories(path("sweep"));
  std::ofstream(path("sweep/sweep.json")) << "{}";
  expect_refused("sweep sweep/sweep.json --out sweep",
                 {"sweep: --out sweep/sweep.json is the input sweep file sweep/sweep.json; expected a different file"});
  const JobResult kept = run("report run --out run/report.html --samples 0");
  EXPECT_EQ(kept.exit_code, 0) << kept.output;
}

TEST_F(OutputsNeverReplaceInputs, AFailedResumeLeavesTheRunFolderAsItWas) {
  const std::string resume = "pretrain --config run.json --run-dir run --resume ";
  expect_refused(resume + "missing", {"missing: not a folder, expected a checkpoint folder"});
  // Valid checkpoint, but the dataset is gone: found only when the loader opens it.
  expect_refused(resume + "auto --data missing", {"missing/manifest.json: cannot be opened"});
  expect_refused(resume + "auto --set optim.epochs=2", {"config differs from the checkpoint's", "optim.epochs: 1 vs 2"});
  // A torn copy of the run: its checkpoint's weights cut short.
  fs::copy(path("run"), path("torn"), fs::copy_options::recursive);
  const fs::path model = path("torn/checkpoints/step-00000003/model.safetensors");
  fs::resize_file(model, fs::file_size(model) / 2);
  expect_refused("pretrain --config run.json --run-dir torn --resume torn/checkpoints/step-00000003",
                 {"torn/checkpoints/step-00000003"});
}

TEST_F(OutputsNeverReplaceInputs, PackOverwriteReplacesTheDatasetWhole) {
  fs::copy(path("dataset"), path("replaced"), fs::copy_options::recursive);
  std::ofstream(path("replaced/notes.txt")) << "an old file\n";
  const JobResult r = run("pack --images images --out replaced --resolution 48 --threads 1 --quiet --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobResult inspect = run("inspect replaced");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("images: 24 (48x48, jpeg)"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("checksums: all 1 shards ok"), std::string::npos) << inspect.output;
  EXPECT_FALSE(fs::exists(path("replaced/notes.txt")));
  EXPECT_FALSE(fs::exists(path(".replaced.pack-new")));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path("replaced"))) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"manifest.json", "pack-report.json", "shard-00000.h5"}));
}

TEST_F(OutputsNeverReplaceInputs, AKilledPackOverwriteLeavesTheOldDatasetAndResumes) {
  // Enough work to be killed in the middle of: larger images, PNG shards of 4 images.
  ASSERT_EQ(run("synth --out big --n 64 --size 320x320 --seed 5 --threads 1 --quiet").exit_code, 0);
  fs::copy(path("dataset"), path("old"), fs::copy_options::recursive);
  const Snapshot before = snapshot(path("old"));
  const std::string pack = "pack --images big --out old --resolution 256 --encoding png --shard-size 4 --threads 1 "
                           "--quiet --overwrite";
  {
    gf::test::BackgroundJob job("cd '" + root_->str() + "' && exec " + bin() + " " + pack, path("killed.log"));
    const fs::path state = path(".old.pack-new/pack-state.json");
    JobResult ended;
    while (!fs::exists(state) && !job.wait(0.005, ended)) {
    }
    ASSERT_TRUE(fs::exists(state)) << "pack ended before its first shard: " << ended.output;
    ASSERT_EQ(kill(job.pid(), SIGKILL), 0);
    ASSERT_TRUE(job.wait(30, ended));
    EXPECT_EQ(ended.exit_code, 128 + SIGKILL) << ended.output;
  }
  EXPECT_EQ(changed(before, snapshot(path("old"))), std::vector<std::string>{});
  const JobResult old = run("inspect old");
  EXPECT_EQ(old.exit_code, 0) << old.output;
  EXPECT_NE(old.output.find("checksums: all 1 shards ok"), std::string::npos) << old.output;

  const JobResult again = run(pack);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("finished shard(s) from an earlier run"), std::string::npos) << again.output;
  const JobResult inspect = run("inspect old");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("images: 64 (256x256, png)"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("checksums: all 16 shards ok"), std::string::npos) << inspect.output;
  EXPECT_FALSE(fs::exists(path(".old.pack-new")));
}

}  // namespace
