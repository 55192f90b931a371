// base/: atomic replacement (files and folders), outputs refused over inputs, SHA-256 (NIST's known answers), the JSON readers' errors,
// parallel_for's error handling, the threads rule and the text helpers.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "base/output_paths.hpp"
#include "base/parallel_for.hpp"
#include "base/progress.hpp"
#include "base/sha256.hpp"
#include "base/text.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/temp_dir.hpp"

namespace gf::base {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

using gf::test::error_of;

TEST(AtomicFile, ReplacesWholeAndKeepsTheOldFileWhenAbandoned) {
  const gf::test::TempDir dir("atomic");
  const std::string path = dir / "file.txt";
  write_file_atomic(path, "first\n");
  EXPECT_EQ(read_text(path), "first\n");
  {
    AtomicFile file(path);
    file.write("half of the second");
    // Destroyed without commit(), as on an exception: the old content stays, no temp file.
  }
  EXPECT_EQ(read_text(path), "first\n");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  write_file_atomic(path, "second\n", 0755);
  EXPECT_EQ(read_text(path), "second\n");
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0755u);
  EXPECT_NE(error_of([&] { write_file_atomic(dir / "no/such/folder/file", "x"); }).find("open for writing failed"),
            std::string::npos);
}

TEST(AtomicFile, ExchangeFolderPutsTheNewFolderInPlaceAndLeavesTheOldOneStaged) {
  const gf::test::TempDir dir("exchange");
  fs::create_directories(dir / "new");
  write_file_atomic(dir / "new/a", "new\n");
  exchange_folder_durable(dir / "new", dir / "target");  // no target yet: a rename
  EXPECT_EQ(read_text(dir / "target/a"), "new\n");
  EXPECT_FALSE(fs::exists(dir / "new"));
  fs::create_directories(dir / "newer");
  write_file_atomic(dir / "newer/b", "newer\n");
  exchange_folder_durable(dir / "newer", dir / "target");
  EXPECT_EQ(read_text(dir / "target/b"), "newer\n");
  EXPECT_FALSE(fs::exists(dir / "target/a"));
  EXPECT_EQ(read_text(dir / "newer/a"), "new\n");  // the old folder, for the caller to remove
}

TEST(OutputPaths, AnOutputNamingOrTouchingAnInputIsRefused) {
  const gf::test::TempDir dir("outputs");
  fs::create_directories(dir / "data/sub");
  write_file_atomic(dir / "w.safetensors", "w");
  fs::create_symlink(dir / "w.safetensors", dir / "link.safetensors");
  const auto refused = [&](const std::string& out, OutputKind kind, const InputPath& input) {
    return gf::test::error_of([&] { refuse_overwriting_input("cmd", {"--out", out}, kind, {input}); });
  };
  const std::string w = dir / "w.safetensors";
  EXPECT_EQ(refused(dir / "./w.safetensors", OutputKind::kFile, {{"--weights", w}}),
            "cmd: --out " + (dir / "./w.safetensors") + " is the input --weights " + w + "; expected a different file");
  EXPECT_NE(refused(dir / "link.safetensors", OutputKind::kFile, {{"--weights", w}}), "");
  EXPECT_NE(refused(dir / "data/sub/../", OutputKind::kFolder, {{"--data", dir / "data"}}).find("expected a different folder"),
            std::string::npos);
  // Inside an input folder: refused only where the input says so.
  EXPECT_EQ(refused(dir / "data/sub/x.h5", OutputKind::kFile, {{"--data", dir / "data"}}), "");
  EXPECT_NE(refused(dir / "data/sub/x.h5", OutputKind::kFile, {{"--data", dir / "data"}, Overlap::kOutInside})
                .find("lies inside the input --data"),
            std::string::npos);
  // Holding an input: refused only where the input says so.
  EXPECT_EQ(refused(dir.str(), OutputKind::kFolder, {{"--data", dir / "data/sub"}}), "");
  EXPECT_NE(refused(dir.str(), OutputKind::kFolder, {{"--data", dir / "data/sub"}, Overlap::kOutHolding})
                .find("holds the input --data"),
            std::string::npos);
  // A sibling that shares a prefix is neither inside nor holding; an input not given is skipped.
  EXPECT_EQ(refused(dir / "data2/x.h5", OutputKind::kFile, {{"--data", dir / "data"}, Overlap::kOutInside}), "");
  EXPECT_EQ(refused(dir / "dat", OutputKind::kFolder, {{"--data", dir / "data/sub"}, Overlap::kOutHolding}), "");
  EXPECT_EQ(refused(dir / "x", OutputKind::kFile, {{"--weights", ""}}), "");
  EXPECT_TRUE(lies_inside(dir / "data/sub", dir / "data"));
  EXPECT_FALSE(lies_inside(dir / "data", dir / "data"));
  EXPECT_FALSE(lies_inside(dir / "data2", dir / "data"));
}

TEST(Sha256, NistKnownAnswers) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const gf::test::TempDir dir("sha256");
  const std::string million = std::string(1000000, 'a');  // more than one 1 MiB read buffer's worth of calls
  std::ofstream(dir / "a") << million;
  EXPECT_EQ(sha256_file(dir / "a"), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_NE(error_of([&] { sha256_file(dir / "missing"); }).find("missing: cannot open"), std::string::npos);
}

TEST(Section, TypedReadsAndErrorsNameSourceFieldAndExpectation) {
  const json root = {{"train", {{"steps", 4}, {"lr", 0.5}, {"name", "x"}, {"tags", {"a", "b"}}, {"class", nullptr}}}};
  Section s(root, "train", "run.json");
  int64_t steps = 0;
  double lr = 0;
  std::string name;
  std::vector<std::string> tags;
  std::optional<int64_t> cls = 3;
  EXPECT_TRUE(s.read("steps", steps));
  EXPECT_TRUE(s.read("lr", lr));
  EXPECT_TRUE(s.read("name", name));
  EXPECT_TRUE(s.read("tags", tags));
  EXPECT_TRUE(s.read("class", cls));
  EXPECT_FALSE(s.read("absent", steps));
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(cls.has_value());
  s.finish();

  EXPECT_EQ(error_of([&] {
              Section t(root, "train", "run.json");
              t.read("name", steps);
            }),
            "run.json: train.name: found \"x\", expected an integer");
  EXPECT_EQ(error_of([&] {
              Section t(root, "train", "run.json");
              t.read("steps", steps);
              t.finish();
            }),
            "run.json: train.class: unknown field (misspelt?), expected one of steps");  // keys in JSON order
  EXPECT_EQ(error_of([&] { Section t(json{{"train", 3}}, "train", "run.json"); }),
            "run.json: train: found 3, expected a JSON object");
  enum class Mode { kA, kB };
  static constexpr EnumName<Mode> kModes[] = {{"a", Mode::kA}, {"b", Mode::kB}};
  Mode mode = Mode::kA;
  const json document = {{"mode", "c"}};
  EXPECT_EQ(error_of([&] { Section::of(document, "x", "f").read("mode", mode, kModes); }),
            "f: x.mode: found \"c\", expected a or b");
}

TEST(JsonFiles, ErrorsNameTheFileAndATornLastLineIsDropped) {
  const gf::test::TempDir dir("json");
  std::ofstream(dir / "bad.json") << "{\"a\": ";
  EXPECT_EQ(error_of([&] { load_json_file(dir / "bad.json"); }).rfind(dir / "bad.json" + ": not valid JSON", 0), 0u);
  std::ofstream(dir / "list.json") << "[1]";
  EXPECT_EQ(error_of([&] { load_json_file(dir / "list.json"); }), dir / "list.json" + ": found array, expected a JSON object");
  std::ofstream(dir / "torn.jsonl") << "{\"step\": 1}\n\n{\"step\": 2}\n{\"step\": 3, \"lo";
  EXPECT_EQ(load_json_lines(dir / "torn.jsonl").size(), 2u);
  std::ofstream(dir / "broken.jsonl") << "{\"step\": 1}\n{oops\n{\"step\": 3}\n";
  EXPECT_EQ(error_of([&] { load_json_lines(dir / "broken.jsonl"); }), dir / "broken.jsonl" + ": line 2: not valid JSON");
}

TEST(ParallelFor, EveryIndexOnceAndTheFirstErrorRethrown) {
  std::vector<std::atomic<int>> seen(100);
  parallel_for(100, 4, [&](int64_t i) { seen[static_cast<size_t>(i)]++; });
  for (const auto& n : seen) EXPECT_EQ(n.load(), 1);
  EXPECT_EQ(error_of([] { parallel_for(50, 3, [](int64_t i) {
                           if (i == 7) throw std::runtime_error("index 7 failed");
                         }); }),
            "index 7 failed");
}

TEST(Threads, OneRuleEverywhere) {
  EXPECT_EQ(resolve_threads(3, 8), 3);
  ::setenv("OMP_NUM_THREADS", "2", 1);
  EXPECT_EQ(resolve_threads(0, 8), 2);
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_GE(resolve_threads(0, 1), resolve_threads(0, 2));
  EXPECT_EQ(resolve_threads(0, 100000), 1);
  // A count no machine here could use is refused, naming the setting.
  EXPECT_GE(max_threads(), 16);
  EXPECT_EQ(check_thread_count(max_threads(), "x"), max_threads());
  EXPECT_THROW(resolve_threads(max_threads() + 1, 1, "train.threads"), std::runtime_error);
  try {
    resolve_threads(5000, 1, "train.threads");
    if (max_threads() < 5000) ADD_FAILURE() << "5000 threads accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("train.threads: found 5000, expected 0 to"), std::string::npos) << e.what();
  }
  ::setenv("OMP_NUM_THREADS", "100000", 1);
  EXPECT_THROW(resolve_threads(0, 1), std::runtime_error);
  ::unsetenv("OMP_NUM_THREADS");
}

TEST(Text, SplitAndTrim) {
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(split("", ',').empty());
  EXPECT_EQ(trim(" \t 12_3 \r\n"), "12_3");
  EXPECT_EQ(trim(" \n"), "");
}

TEST(Progress, PlainLinesCarryRateAndEta) {
  std::ostringstream out;
  {
    ProgressOptions o;
    o.label = "pack";
    o.style = ProgressStyle::kPlain;
    o.interval_seconds = 0;
    Progress progress(o, 10, out);
    for (int i = 0; i < 4; ++i) progress.advance();
  }
  const std::string text = out.str();
  EXPECT_NE(text.find("pack: 1/10 images (10.0%), "), std::string::npos) << text;
  EXPECT_NE(text.find("images/s, ETA "), std::string::npos) << text;
  EXPECT_NE(text.find("pack: 4/10 images (40.0%), "), std::string::npos) << text;
  EXPECT_NE(text.find("done in"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(format_duration(238), "3m58s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace gf::base
