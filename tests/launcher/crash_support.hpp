#pragma once
// What the crash-safety tests share (test_crash_kill.cpp, test_crash_full_disk.cpp): the
// workloads they interrupt (pack, pretrain writing checkpoints, embed), each run once
// uninterrupted as the reference, and the checks that a stage's outputs after an interruption
// are finished and equal to the reference's, or clearly not finished.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/sha256.hpp"
#include "data/dataset.hpp"
#include "eval/embeddings_file.hpp"
#include "tests/support/run_job.hpp"
#include "tests/support/temp_dir.hpp"
#include "train/checkpoint.hpp"

namespace gf::test::crash {

namespace fs = std::filesystem;

inline std::string sha(const fs::path& file) { return base::sha256_file(file.string()); }

inline std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The names in `dir`, sorted; empty when it does not exist.
inline std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The one error line of a command that failed cleanly: a non-zero exit that is not a signal,
// exactly one "error:" line holding every one of `expected`, no backtrace or library dump.
inline void expect_one_error_line(const JobResult& r, const std::vector<std::string>& expected) {
  EXPECT_GT(r.exit_code, 0) << r.output;
  EXPECT_LT(r.exit_code, 128) << "ended by signal " << r.exit_code - 128 << "\n" << r.output;
  std::vector<std::string> errors;
  std::stringstream text(r.output);
  for (std::string line; std::getline(text, line);)
    if (line.find("error:") != std::string::npos) errors.push_back(line);
  ASSERT_EQ(errors.size(), 1u) << r.output;
  std::cout << "the one error line: " << errors[0] << "\n";
  for (const auto& part : expected) EXPECT_NE(errors[0].find(part), std::string::npos) << part << " in\n" << r.output;
  for (const char* noise : {"frame #", "HDF5-DIAG", "terminate called", "Exception raised from"})
    EXPECT_EQ(r.output.find(noise), std::string::npos) << noise << " in\n" << r.output;
}

// Runs `command` in the background and SIGKILLs it as soon as `point` holds (polled every
// 100 us). `killed` is false when the command ended before the point was seen or before the
// signal arrived (exit status not 128 + SIGKILL).
struct Interrupted {
  bool killed = false;
  JobResult ended;
};
inline Interrupted kill_at(const std::string& command, const std::function<bool()>& point, const fs::path& log) {
  BackgroundJob job("exec " + command, log.string());
  Interrupted r;
  while (!point()) {
    if (job.wait(0, r.ended)) return r;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  ::kill(job.pid(), SIGKILL);
  if (!job.wait(60, r.ended)) ADD_FAILURE() << command << ": still running 60 s after SIGKILL";
  r.killed = r.ended.exit_code == 128 + SIGKILL;
  return r;
}

// kill_at, then a line saying where the kill was aimed, whether it landed, and what `shown` held.
inline Interrupted kill_at_and_show(const std::string& aim, const std::string& command, const std::function<bool()>& point,
                                    const fs::path& log, const fs::path& shown) {
  const Interrupted r = kill_at(command, point, log);
  std::cout << aim << ": " << (r.killed ? "killed" : "had finished") << ", left "
            << ::testing::PrintToString(names_in(shown)) << " in " << shown.filename() << "\n";
  return r;
}

inline bool present(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// A test's folder with the stage commands and their uninterrupted references.
class Workspace : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return root_ / name; }
  static std::string bin() { return greenfound_bin(); }
  static JobResult greenfound(const std::string& args) { return run_job(bin() + " " + args); }

  // 32 synthetic fundus images (320 px) with labels, in images/.
  void make_images() {
    const JobResult r = greenfound("synth --out " + path("images") + " --n 32 --size 320x320 --seed 5 --threads 1 --quiet");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Packs images/ into `out`: PNG shards of 4 images at 128 px (8 shards, ~110 KB each).
  std::string pack_command(const std::string& out, const std::string& extra = "") const {
    return bin() + " pack --images " + path("images") + " --labels " + path("images/labels.csv") +
           " --id-column image_id --split-by patient_id --test-fraction 0.4 --resolution 128 --encoding png"
           " --shard-size 4 --threads 1 --quiet --out " + out + extra;
  }

  // The reference dataset, packed uninterrupted into ref-dataset/.
  void make_reference_dataset() {
    make_images();
    const JobResult r = run_job(pack_command(path("ref-dataset")));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // `out` holds the reference dataset: it verifies, and its manifest and shards are the
  // reference's bytes.
  void expect_reference_shards(const fs::path& out) const {
    EXPECT_NO_THROW(data::Dataset::open(out.string(), data::Verify::kChecksums)) << out;
    const fs::path ref = path("ref-dataset");
    for (const auto& name : names_in(ref))
      if (name != "pack-report.json") EXPECT_EQ(sha(out / name), sha(ref / name)) << out / name;
  }
  // ... and nothing else but the pack report: no state or temporary file left.
  void expect_reference_dataset(const fs::path& out) const {
    expect_reference_shards(out);
    EXPECT_EQ(names_in(out), names_in(path("ref-dataset"))) << out;
  }

  // Shards an unfinished pack in `out` recorded as finished (pack-state.json): each must match
  // its recorded sha256 and the reference's shard of the same name. Returns how many.
  size_t expect_recorded_shards_finished(const fs::path& out) const {
    const fs::path state_file = out / "pack-state.json";
    if (!present(state_file)) return 0;
    const nlohmann::json state = nlohmann::json::parse(read_text(state_file));
    for (const auto& shard : state.at("shards")) {
      const std::string file = shard.at("file").get<std::string>();
      EXPECT_EQ(sha(out / file), shard.at("sha256").get<std::string>()) << out / file;
      EXPECT_EQ(sha(out / file), sha(fs::path(path("ref-dataset")) / file)) << out / file;
    }
    return state.at("shards").size();
  }

  // A tiny Token Reconstruction run on 24 images: 3 steps per epoch, 2 epochs, a checkpoint
  // (~5 MB) after every step, the last two kept.
  void make_training_config() {
    ASSERT_EQ(greenfound("synth --out " + path("train-images") + " --n 24 --size 96x96 --seed 2 --threads 1 --quiet").exit_code, 0);
    ASSERT_EQ(greenfound("pack --images " + path("train-images") + " --out " + path("train-data") +
                         " --resolution 64 --threads 1 --quiet")
                  .exit_code,
              0);
    std::ofstream(path("run.json")) << R"({"model": {"arch": "vit_tiny_patch14_reg4", "img_size": 56, "init_seed": 1},
 "optim": {"lr": 1e-3, "epochs": 2, "cosine_epochs": 2, "warmup_epochs": 0},
 "data": {"path": ")" << path("train-data")
                                    << R"(", "batch_size": 8, "workers": 1, "prefetch": 1, "seed": 3},
 "train": {"threads": 1, "log_every": 1, "checkpoint_every_steps": 1, "keep_last": 2},
 "energy": {"sample_hz": 20}})";
  }
  std::string pretrain_command(const std::string& run_dir, const std::string& extra = "") const {
    return bin() + " pretrain --config " + path("run.json") + " --run-dir " + run_dir + extra;
  }

  // The reference run, uninterrupted, every checkpoint kept: ref-run/.
  void make_reference_run() {
    make_training_config();
    const JobResult r = run_job(pretrain_command(path("ref-run"), " --set train.keep_last=10"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // A complete checkpoint equals the reference run's at the same step: it loads, and its model
  // and optimizer files are the reference's bytes (resume is bitwise exact).
  void expect_reference_checkpoint(const fs::path& dir) const {
    EXPECT_NO_THROW(train::load_checkpoint(dir.string())) << dir;
    const fs::path ref = fs::path(path("ref-run")) / "checkpoints" / dir.filename();
    for (const char* file : {"model.safetensors", "optimizer.safetensors"})
      EXPECT_EQ(sha(dir / file), sha(ref / file)) << dir / file;
  }

  // step -> loss of a run's metrics.jsonl, every step once.
  static std::map<int64_t, double> losses(const fs::path& run_dir) {
    std::map<int64_t, double> by_step;
    std::stringstream lines(read_text(run_dir / "metrics.jsonl"));
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json record = nlohmann::json::parse(line);
      const int64_t step = record.at("step").get<int64_t>();
      EXPECT_EQ(by_step.count(step), 0u) << "step " << step << " twice in " << run_dir / "metrics.jsonl";
      by_step[step] = record.at("loss").get<double>();
    }
    return by_step;
  }

  // embed of the reference dataset with a randomly initialised tiny encoder.
  std::string embed_command(const std::string& out, int init_seed = 7, const std::string& extra = "") const {
    return bin() + " embed --data " + path("ref-dataset") + " --arch vit_tiny_patch14_reg4 --init-seed " +
           std::to_string(init_seed) + " --img-size 56 --batch-size 4 --threads 1 --workers 1 --out " + out + extra;
  }

  // `file` holds the reference embeddings (same rows, ids, split and labels).
  void expect_reference_embeddings(const fs::path& file) const {
    eval::EmbeddingTable got, want;
    ASSERT_NO_THROW(got = eval::read_embeddings(file.string())) << file;
    want = eval::read_embeddings(path("ref-embed/embeddings.h5"));
    EXPECT_EQ(got.ids, want.ids);
    EXPECT_EQ(got.split, want.split);
    EXPECT_EQ(got.dim, want.dim);
    EXPECT_TRUE(got.values == want.values) << file << ": values differ from the uninterrupted embed";
    EXPECT_EQ(got.labels.size(), want.labels.size());
  }

  TempDir root_{"crash"};
};

}  // namespace gf::test::crash
