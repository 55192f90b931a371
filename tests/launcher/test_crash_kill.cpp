// Crash safety (issue 15): pack, pretrain (checkpoint writing) and embed killed with SIGKILL at
// several points, through the greenfound binary. Each point is a file appearing (polled every
// 100 us), so the kill lands inside the step that file starts. After each kill: everything
// finished verifies and equals the uninterrupted run's bytes, nothing half-written is taken as
// complete, and the same command run again finishes with the uninterrupted result.
#include <sys/stat.h>

#include <iostream>

#include "tests/launcher/crash_support.hpp"

namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::run_job;
using namespace gf::test::crash;

class CrashKill : public Workspace {};

// The inode of `file` (a rename over it changes it), 0 when absent.
ino_t inode(const fs::path& file) {
  struct stat st {};
  return ::stat(file.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Where a kill lands: a description, and the file whose appearance triggers it.
struct KillPoint {
  std::string what;
  std::string file;  // relative to the stage's output folder
};

TEST_F(CrashKill, KilledPackKeepsFinishedShardsAndResumes) {
  ASSERT_NO_FATAL_FAILURE(make_reference_dataset());
  const std::vector<KillPoint> points = {
      {"writing the first shard, nothing finished", "shard-00000.h5.tmp"},
      {"writing the fourth shard, three finished", "shard-00003.h5.tmp"},
      {"a shard renamed into place, perhaps not yet in pack-state.json", "shard-00005.h5"},
      {"every shard done, the manifest perhaps not yet written", "pack-report.json"},
      {"the manifest written, pack-state.json perhaps not yet removed", "manifest.json"},
  };
  int killed = 0;
  for (size_t k = 0; k < points.size(); ++k) {
    SCOPED_TRACE("pack killed at: " + points[k].what);
    const fs::path out = path("pack-" + std::to_string(k));
    const Interrupted r = kill_at_and_show("pack at: " + points[k].what, pack_command(out.string()),
                                           [&] { return present(out / points[k].file); }, out.string() + ".log", out);
    killed += r.killed;
    // Finished is verified; unfinished is not a dataset.
    const size_t recorded = expect_recorded_shards_finished(out);
    if (present(out / "manifest.json")) {
      expect_reference_shards(out);
    } else {
      EXPECT_FALSE(gf::data::is_dataset_dir(out.string())) << "an unfinished pack taken as a dataset";
      EXPECT_ANY_THROW(gf::data::Dataset::open(out.string(), gf::data::Verify::kChecksums));
    }
    // Run again: resumes after the recorded shards, ends as the uninterrupted pack.
    const JobResult again = run_job(pack_command(out.string()));
    ASSERT_EQ(again.exit_code, 0) << again.output;
    if (recorded > 0) EXPECT_NE(again.output.find("shard(s) from an earlier run"), std::string::npos) << again.output;
    expect_reference_dataset(out);
  }
  // The points up to the report are seconds apart from the end: those kills land mid-run.
  EXPECT_GE(killed, 3);
}

TEST_F(CrashKill, PackOverwriteKilledAfterItsSwapFinishesTheCleanup) {
  ASSERT_NO_FATAL_FAILURE(make_reference_dataset());
  // A dataset of other options with a file of its own, replaced by --overwrite: killed once
  // the new dataset is swapped in, while the old one (staged aside) is being removed.
  const fs::path out = path("dataset"), staged = path(".dataset.pack-new");
  JobResult r = greenfound("pack --images " + path("images") + " --out " + out.string() + " --resolution 32 --threads 1 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ofstream(out / "notes.txt") << "the old dataset's\n";
  kill_at_and_show("pack --overwrite after its swap", pack_command(out.string(), " --overwrite"),
                   [&] { return present(staged / "notes.txt"); }, path("overwrite.log"), staged);
  expect_reference_shards(out);  // the new dataset is in place and complete
  r = run_job(pack_command(out.string(), " --overwrite"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_reference_dataset(out);
  EXPECT_FALSE(present(staged)) << "the replaced dataset was left in " << staged;
}

TEST_F(CrashKill, KilledCheckpointWriteResumesFromTheLastCompleteOne) {
  ASSERT_NO_FATAL_FAILURE(make_reference_run());
  const std::vector<KillPoint> points = {
      {"writing the first checkpoint, none complete", "checkpoints/step-00000001.tmp"},
      {"writing step 3's optimizer file", "checkpoints/step-00000003.tmp/optimizer.safetensors.tmp"},
      {"step 4's files written, its folder not yet renamed", "checkpoints/step-00000004.tmp/state.json"},
      {"step 5 renamed into place, step 3 perhaps not yet removed", "checkpoints/step-00000005"},
  };
  const std::map<int64_t, double> reference_losses = losses(path("ref-run"));
  ASSERT_EQ(reference_losses.size(), 6u);
  int killed = 0;
  for (size_t k = 0; k < points.size(); ++k) {
    SCOPED_TRACE("pretrain killed at: " + points[k].what);
    const fs::path run = path("run-" + std::to_string(k));
    const Interrupted r = kill_at_and_show("pretrain at: " + points[k].what, pretrain_command(run.string()),
                                           [&] { return present(run / points[k].file); }, run.string() + ".log",
                                           run / "checkpoints");
    killed += r.killed;
    // Every complete checkpoint is the reference's; what is not complete is not listed.
    const std::vector<std::string> complete = gf::train::list_checkpoints(run.string());
    for (const auto& dir : complete) expect_reference_checkpoint(dir);
    for (const auto& name : names_in(run / "checkpoints")) {
      const bool listed = std::find(complete.begin(), complete.end(), (run / "checkpoints" / name).string()) != complete.end();
      if (name.find(".tmp") != std::string::npos) EXPECT_FALSE(listed) << name;
    }
    // --resume auto continues from the newest complete checkpoint and ends as the reference.
    const JobResult again = run_job(pretrain_command(run.string(), " --resume auto"));
    ASSERT_EQ(again.exit_code, 0) << again.output;
    if (complete.empty())
      EXPECT_NE(again.output.find("pretrain: starting"), std::string::npos) << again.output;
    else
      EXPECT_NE(again.output.find("pretrain: resuming from " + complete.back() + ":"), std::string::npos) << again.output;
    EXPECT_EQ(names_in(run / "checkpoints"), (std::vector<std::string>{"step-00000005", "step-00000006"}));
    expect_reference_checkpoint(run / "checkpoints/step-00000006");
    EXPECT_EQ(losses(run), reference_losses);
  }
  EXPECT_GE(killed, 3);
}

TEST_F(CrashKill, KilledEmbedLeavesTheOldFileOrTheNewOne) {
  ASSERT_NO_FATAL_FAILURE(make_reference_dataset());
  JobResult r = run_job(embed_command(path("ref-embed/embeddings.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // An earlier result in the place of each output: another encoder's embeddings.
  r = run_job(embed_command(path("old/embeddings.h5"), 8, " --no-energy"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string old_sha = sha(path("old/embeddings.h5"));

  struct EmbedPoint {
    std::string what;
    std::function<bool(const fs::path&, ino_t old)> reached;  // given the output folder and the old file's inode
  };
  const std::vector<EmbedPoint> points = {
      {"the encoder built and the dataset open (energy.csv started)",
       [](const fs::path& d, ino_t) { return present(d / "energy.csv"); }},
      {"writing the embeddings file", [](const fs::path& d, ino_t) { return present(d / "embeddings.h5.tmp"); }},
      {"the new file renamed over the old one",
       [](const fs::path& d, ino_t old) { return inode(d / "embeddings.h5") != old; }},
  };
  for (size_t k = 0; k < points.size(); ++k) {
    SCOPED_TRACE("embed killed at: " + points[k].what);
    const fs::path dir = path("embed-" + std::to_string(k));
    fs::create_directories(dir);
    fs::copy_file(path("old/embeddings.h5"), dir / "embeddings.h5");
    const fs::path out = dir / "embeddings.h5";
    const ino_t old = inode(out);
    kill_at_and_show("embed at: " + points[k].what, embed_command(out.string()),
                     [&] { return points[k].reached(dir, old); }, dir.string() + ".log", dir);
    // The old file, untouched, or the new one, complete.
    ASSERT_TRUE(present(out));
    if (sha(out) != old_sha) expect_reference_embeddings(out);
    const JobResult again = run_job(embed_command(out.string()));
    ASSERT_EQ(again.exit_code, 0) << again.output;
    expect_reference_embeddings(out);
    EXPECT_FALSE(present(dir / "embeddings.h5.tmp"));
  }
}

}  // namespace
