// Crash safety (issue 15): pack, checkpointing and embed running out of space on a small tmpfs
// the test mounts (as root; skipped otherwise), through the greenfound binary. The command
// fails with one line naming the file and "No space left on device"; what was finished before
// is byte-identical; nothing half-written is left; with space made, the same command finishes
// with the uninterrupted result.
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/launcher/crash_support.hpp"

namespace {

namespace fs = std::filesystem;
using gf::test::JobResult;
using gf::test::run_job;
using namespace gf::test::crash;

constexpr const char* kNoSpace = "No space left on device";

// A tmpfs mounted at `dir` for the object's life, unmounted by the destructor (when a test
// fails too). unavailable() says why none could be mounted (not root, no CAP_SYS_ADMIN).
class SmallFilesystem {
 public:
  SmallFilesystem(const fs::path& dir, long kilobytes) : dir_(dir) {
    fs::create_directories(dir);
    if (::geteuid() != 0) {
      why_ = "mounting a tmpfs needs root (uid " + std::to_string(::geteuid()) + ")";
      return;
    }
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, size_option(kilobytes).c_str()) != 0) {
      why_ = "mount -t tmpfs " + dir.string() + ": " + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

  const std::string& unavailable() const { return why_; }
  // A new size (not below what is stored).
  void resize(long kilobytes) const {
    ASSERT_EQ(::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, size_option(kilobytes).c_str()), 0)
        << std::strerror(errno);
  }
  long used_kb() const {
    struct statvfs s {};
    ::statvfs(dir_.c_str(), &s);
    return static_cast<long>((s.f_blocks - s.f_bfree) * s.f_frsize / 1024);
  }

 private:
  static std::string size_option(long kilobytes) { return "size=" + std::to_string(kilobytes) + "k"; }
  fs::path dir_;
  std::string why_;
  bool mounted_ = false;
};

// Every regular file under `dir` with its sha256.
std::map<std::string, std::string> file_hashes(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = sha(e.path());
  return files;
}

// Names of the files under `dir` that hold ".tmp" (temporaries left behind).
std::vector<std::string> temporaries(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) found.push_back(e.path().string());
  return found;
}

class CrashFullDisk : public Workspace {};

TEST_F(CrashFullDisk, PackOverwriteOutOfSpaceKeepsTheOldDatasetAndResumes) {
  ASSERT_NO_FATAL_FAILURE(make_reference_dataset());
  const SmallFilesystem disk(path("disk"), 4096);
  if (!disk.unavailable().empty()) GTEST_SKIP() << "SKIPPED: no small file system to fill: " << disk.unavailable();
  // A finished dataset on the small disk (other options: 32 px JPEG), then room for about
  // three of the new dataset's shards beside it.
  const fs::path out = path("disk/dataset");
  JobResult r = greenfound("pack --images " + path("images") + " --out " + out.string() + " --resolution 32 --threads 1 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto old_files = file_hashes(out);
  long three_shards = 0;
  for (const char* name : {"shard-00000.h5", "shard-00001.h5", "shard-00002.h5"})
    three_shards += static_cast<long>(fs::file_size(fs::path(path("ref-dataset")) / name) / 1024 + 4);
  ASSERT_NO_FATAL_FAILURE(disk.resize(disk.used_kb() + three_shards + 16));

  r = run_job(pack_command(out.string(), " --overwrite"));
  expect_one_error_line(r, {path("disk/.dataset.pack-new/shard-"), kNoSpace});
  EXPECT_EQ(file_hashes(out), old_files) << "the old dataset changed";
  EXPECT_NO_THROW(gf::data::Dataset::open(out.string(), gf::data::Verify::kChecksums));
  // The new dataset's finished shards are kept for the resume, and nothing half-written.
  const fs::path staged = path("disk/.dataset.pack-new");
  EXPECT_GE(expect_recorded_shards_finished(staged), 1u);
  EXPECT_FALSE(present(staged / "manifest.json"));
  EXPECT_EQ(temporaries(path("disk")), std::vector<std::string>{});

  // Space made: the same command resumes and swaps the new dataset in.
  ASSERT_NO_FATAL_FAILURE(disk.resize(4096));
  r = run_job(pack_command(out.string(), " --overwrite"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("shard(s) from an earlier run"), std::string::npos) << r.output;
  expect_reference_dataset(out);
  EXPECT_FALSE(present(staged));
}

TEST_F(CrashFullDisk, CheckpointOutOfSpaceKeepsTheLastOneAndResumes) {
  ASSERT_NO_FATAL_FAILURE(make_reference_run());
  const SmallFilesystem disk(path("disk"), 20480);
  if (!disk.unavailable().empty()) GTEST_SKIP() << "SKIPPED: no small file system to fill: " << disk.unavailable();
  // Two steps and their checkpoint on the small disk; then room for the next checkpoint's model
  // file (1.6 MB) but not its optimizer file (3.3 MB).
  const fs::path run = path("disk/run");
  const std::string every_second_step = " --set train.checkpoint_every_steps=2 --set train.keep_last=1";
  JobResult r = run_job(pretrain_command(run.string(), " --max-steps 2" + every_second_step));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path step2 = run / "checkpoints/step-00000002";
  const auto step2_files = file_hashes(step2);
  ASSERT_NO_FATAL_FAILURE(disk.resize(disk.used_kb() + 2500));

  r = run_job(pretrain_command(run.string(), " --resume auto --max-steps 4" + every_second_step));
  expect_one_error_line(r, {(run / "checkpoints/step-00000004.tmp/").string(), kNoSpace});
  EXPECT_EQ(file_hashes(step2), step2_files) << "the finished checkpoint changed";
  EXPECT_EQ(gf::train::list_checkpoints(run.string()), std::vector<std::string>{step2.string()});
  EXPECT_EQ(names_in(run / "checkpoints"), std::vector<std::string>{"step-00000002"}) << "a half checkpoint left";
  expect_reference_checkpoint(step2);

  // Space made: --resume auto continues from step 2 and ends as the uninterrupted run.
  ASSERT_NO_FATAL_FAILURE(disk.resize(20480));
  r = run_job(pretrain_command(run.string(), " --resume auto --max-steps 4" + every_second_step));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pretrain: resuming from " + step2.string() + ":"), std::string::npos) << r.output;
  EXPECT_EQ(names_in(run / "checkpoints"), std::vector<std::string>{"step-00000004"});
  expect_reference_checkpoint(run / "checkpoints/step-00000004");
  const auto reference = losses(path("ref-run"));
  EXPECT_EQ(losses(run), (std::map<int64_t, double>(reference.begin(), reference.find(5))));
}

TEST_F(CrashFullDisk, EmbedOutOfSpaceKeepsTheOldFile) {
  ASSERT_NO_FATAL_FAILURE(make_reference_dataset());
  JobResult r = run_job(embed_command(path("ref-embed/embeddings.h5")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const SmallFilesystem disk(path("disk"), 1024);
  if (!disk.unavailable().empty()) GTEST_SKIP() << "SKIPPED: no small file system to fill: " << disk.unavailable();
  // Another encoder's embeddings on the small disk, and no room for a second file.
  const fs::path out = path("disk/embeddings.h5");
  r = run_job(embed_command(out.string(), 8, " --no-energy"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string old_sha = sha(out);
  ASSERT_NO_FATAL_FAILURE(disk.resize(disk.used_kb() + 4));

  r = run_job(embed_command(out.string(), 7, " --no-energy"));
  expect_one_error_line(r, {out.string() + ".tmp", kNoSpace});
  EXPECT_EQ(sha(out), old_sha);
  EXPECT_EQ(names_in(path("disk")), std::vector<std::string>{"embeddings.h5"});

  ASSERT_NO_FATAL_FAILURE(disk.resize(1024));
  r = run_job(embed_command(out.string(), 7, " --no-energy"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_reference_embeddings(out);
}

}  // namespace
