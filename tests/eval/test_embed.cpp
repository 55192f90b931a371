// End to end through the CLI: synth -> pack -> embed (1 rank and 2 ranks, dataset and folder
// forms) -> probe of two randomly initialised tiny encoders; h5py reads what embed wrote.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>

#include "base/sha256.hpp"
#include "eval/embeddings_file.hpp"
#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"
#include "tests/eval/eval_test_support.hpp"
#include "tests/support/run_job.hpp"
#include "train/checkpoint.hpp"

namespace gf::eval {
namespace {

using testing::read_json;
using testing::run_python;
using testing::suite_scratch_dir;

// Runs a command line, its output kept in `log`; returns the exit status.
int run(const std::string& command, const std::filesystem::path& log) {
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  if (status != 0) {
    std::ifstream in(log);
    std::cerr << command << "\n" << in.rdbuf() << "\n";
  }
  return status;
}

double max_abs_difference(const EmbeddingTable& a, const EmbeddingTable& b) {
  double worst = 0;
  for (size_t i = 0; i < a.values.size(); ++i) worst = std::max(worst, double(std::fabs(a.values[i] - b.values[i])));
  return worst;
}

class EmbedEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = suite_scratch_dir();
    bin_ = gf::test::greenfound_bin();
    mpiexec_ = gf::test::mpiexec();
    // mpirun as root (CI) and more ranks than cores, whatever the ctest environment says.
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    ::setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    // No ASSERT here: a failed SetUpTestSuite only marks the tests skipped, which ctest passes.
    if (run(bin_ + " synth --out " + path("images") + " --n 48 --seed 3 --size 96x80 --threads 2 --quiet", log("synth")) != 0)
      setup_error_ = "greenfound synth failed (" + log("synth").string() + ")";
    else if (run(bin_ + " pack --images " + path("images") + " --labels " + path("images/labels.csv") +
                     " --id-column image_id --split-by patient_id --test-fraction 0.4 --resolution 64 --shard-size 20"
                     " --threads 2 --quiet --out " + path("dataset"),
                 log("pack")) != 0)
      setup_error_ = "greenfound pack failed (" + log("pack").string() + ")";
  }

  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::string path(const std::string& name) { return (dir_ / name).string(); }
  static std::filesystem::path log(const std::string& name) { return dir_ / (name + ".log"); }
  // embed with a randomly initialised tiny encoder; extra flags select input and output.
  static std::string embed(int ranks, const std::string& flags) {
    const std::string command = bin_ + " embed --arch vit_tiny_patch14_reg4 --img-size 56 --batch-size 5 --threads 1 " + flags;
    return ranks == 1 ? command : mpiexec_ + " -n " + std::to_string(ranks) + " " + command;
  }

  static inline std::filesystem::path dir_;
  static inline std::string bin_, mpiexec_, setup_error_;
};

TEST_F(EmbedEndToEnd, TwoRanksWriteWhatOneRankWrites) {
  for (const std::string form : {"--data " + path("dataset"), "--images " + path("images")}) {
    SCOPED_TRACE(form);
    ASSERT_EQ(run(embed(1, form + " --init-seed 1 --workers 2 --out " + path("one.h5")), log("embed1")), 0);
    ASSERT_EQ(run(embed(2, form + " --init-seed 1 --workers 1 --out " + path("two.h5")), log("embed2")), 0);
    const EmbeddingTable one = read_embeddings(path("one.h5")), two = read_embeddings(path("two.h5"));
    ASSERT_EQ(one.ids, two.ids);
    EXPECT_EQ(one.split, two.split);
    EXPECT_EQ(one.rows(), 48);
    EXPECT_EQ(one.dim, 96);
    ASSERT_EQ(one.values.size(), two.values.size());
    // The same images through the same network; only the batch composition differs.
    const double difference = max_abs_difference(one, two);
    std::cout << form << ": max |1 rank - 2 ranks| = " << difference << "\n";
    EXPECT_LE(difference, 1e-5);
    EXPECT_TRUE(std::is_sorted(one.ids.begin(), one.ids.end()));
    std::ifstream in(log("embed2"));
    const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(output.find("images/s"), std::string::npos) << output;
    EXPECT_NE(output.find("384 bytes per embedding"), std::string::npos) << output;  // 96 x float32
  }
}

TEST_F(EmbedEndToEnd, H5pyReadsTheEmbeddingsFile) {
  ASSERT_EQ(run(embed(1, "--data " + path("dataset") + " --split all --init-seed 4 --dtype float16 --out " + path("half.h5")),
                log("embed_half")),
            0);
  ASSERT_EQ(run_python("check_embeddings_h5.py", path("half.h5") + " " + path("half.json")), 0);
  const auto view = read_json(dir_ / "half.json");
  const EmbeddingTable table = read_embeddings(path("half.h5"));
  EXPECT_EQ(view["shape"], nlohmann::json({48, 96}));
  EXPECT_EQ(view["dtype"], "float16");
  EXPECT_EQ(view["ids"].get<std::vector<std::string>>(), table.ids);
  EXPECT_EQ(view["split"].get<std::vector<std::string>>(), table.split);
  double sum = 0;
  for (float v : table.values) sum += v;
  EXPECT_NEAR(view["sum"].get<double>(), sum, 1e-6 * std::max(1.0, std::fabs(sum)));
  EXPECT_EQ(view["attrs"]["arch"], "vit_tiny_patch14_reg4");
  EXPECT_EQ(view["attrs"]["pool"], "mean_all");
  EXPECT_EQ(view["attrs"]["img_size"], 56);
  EXPECT_EQ(view["attrs"]["weights_sha256"], "random-init-seed-4");
  for (const char* column : {"dr_grade", "diabetes", "glaucoma"}) {
    ASSERT_TRUE(view["labels"].contains(column)) << column;
    EXPECT_EQ(view["label_dtypes"][column], "int64");
    const auto& values = table.labels.at(column).values;
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_EQ(view["labels"][column][i].get<double>(), std::isnan(values[i]) ? -1.0 : values[i]);
  }
  // Label attributes as in the shards: the type, and the names of category values.
  EXPECT_EQ(view["label_attrs"]["diabetes"]["type"], "yesno");
  EXPECT_EQ(view["label_attrs"]["site"]["type"], "category");
  EXPECT_EQ(view["label_attrs"]["site"]["categories"].get<std::vector<std::string>>(), table.labels.at("site").categories);
  EXPECT_FALSE(table.labels.at("site").categories.empty());
  EXPECT_TRUE(std::count(table.split.begin(), table.split.end(), "test") > 0);
  EXPECT_TRUE(std::count(table.split.begin(), table.split.end(), "train") > 0);
}

// The raw-pixel baseline: no encoder, each image area-averaged to N x N (3*N*N values of the
// normalised image, so within [-1, 1]); ranks split it like an encoder; never with an encoder.
TEST_F(EmbedEndToEnd, PixelBaselineWritesAreaAveragesLikeAnEncoder) {
  const std::string base = bin_ + " embed --img-size 56 --batch-size 5 --threads 1 --no-energy --data " + path("dataset");
  ASSERT_EQ(run(base + " --pixels 4 --out " + path("pixels1.h5"), log("pixels1")), 0);
  ASSERT_EQ(run(mpiexec_ + " -n 2 " + base + " --pixels 4 --out " + path("pixels2.h5"), log("pixels2")), 0);
  const EmbeddingTable one = read_embeddings(path("pixels1.h5")), two = read_embeddings(path("pixels2.h5"));
  EXPECT_EQ(one.dim, 48);
  EXPECT_EQ(one.arch, "pixels_4");
  EXPECT_EQ(one.weights_sha256, "pixels_4");
  EXPECT_EQ(one.ids, two.ids);
  EXPECT_EQ(max_abs_difference(one, two), 0.0);
  float low = 1, high = -1;
  for (float v : one.values) low = std::min(low, v), high = std::max(high, v);
  EXPECT_GE(low, -1.0f);
  EXPECT_LE(high, 1.0f);
  EXPECT_LT(low, high);
  EXPECT_NE(run(base + " --pixels 4 --init-seed 1 --arch vit_tiny_patch14_reg4 --out " + path("both.h5"), log("both")), 0);
}

// The same encoder three ways: random init by seed, a .safetensors of it, and a pretrain
// checkpoint holding it as the student (with the wrapper's extra tensors).
TEST_F(EmbedEndToEnd, WeightsFileAndCheckpointLoadTheSameEncoder) {
  model::VisionTransformer encoder(model::arch_options("vit_tiny_patch14_reg4", 56));
  encoder->init_weights(7);
  const model::StateDict state = model::model_state_dict(*encoder);
  model::write_safetensors(path("tiny.safetensors"), state);
  train::Checkpoint checkpoint;
  checkpoint.state.step = 3;
  checkpoint.state.config = {{"model", {{"arch", "vit_tiny_patch14_reg4"}}}};
  checkpoint.model = state;
  checkpoint.model.emplace_back("corruption_token", at::zeros({1, 1, 96}));
  checkpoint.model.emplace_back("projector.1.weight", at::randn({96, 96}));
  const std::string saved = train::save_checkpoint(path("run"), checkpoint, 1);

  const std::string images = "--images " + path("images") + " --out ";
  ASSERT_EQ(run(embed(1, images + path("init.h5") + " --init-seed 7"), log("init")), 0);
  ASSERT_EQ(run(embed(1, images + path("weights.h5") + " --weights " + path("tiny.safetensors")), log("weights")), 0);
  ASSERT_EQ(run(embed(2, images + path("checkpoint.h5") + " --checkpoint " + saved), log("checkpoint")), 0);
  const EmbeddingTable init = read_embeddings(path("init.h5"));
  const EmbeddingTable weights = read_embeddings(path("weights.h5"));
  const EmbeddingTable from_checkpoint = read_embeddings(path("checkpoint.h5"));
  EXPECT_EQ(max_abs_difference(init, weights), 0.0);
  EXPECT_LE(max_abs_difference(init, from_checkpoint), 1e-5);  // 2 ranks: other batches
  EXPECT_EQ(weights.weights_sha256, base::sha256_file(path("tiny.safetensors")));
  EXPECT_EQ(from_checkpoint.weights_sha256, base::sha256_file(saved + "/model.safetensors"));
  EXPECT_EQ(from_checkpoint.arch, "vit_tiny_patch14_reg4");
}

TEST_F(EmbedEndToEnd, ProbeOfTwoModelsWritesTheTables) {
  ASSERT_EQ(run(embed(2, "--data " + path("dataset") + " --init-seed 1 --out " + path("seed1.h5")), log("seed1")), 0);
  ASSERT_EQ(run(embed(1, "--data " + path("dataset") + " --init-seed 2 --out " + path("seed2.h5")), log("seed2")), 0);
  std::ofstream(dir_ / "tasks.json") << R"({"tasks": [
    {"name": "diabetes", "label": "diabetes"},
    {"name": "site", "label": "site", "kind": "multiclass"},
    {"name": "any_dr", "label": "dr_grade > 0"}
  ]})";
  ASSERT_EQ(run(mpiexec_ + " -n 2 " + bin_ + " probe --embeddings seed1=" + path("seed1.h5") + " seed2=" + path("seed2.h5") +
                    " --versus seed1 --tasks " + path("tasks.json") + " --threads 1 --out " + path("results"),
                log("probe")),
            0);
  const auto results = read_json(dir_ / "results" / "results.json");
  for (const char* key : {"results", "comparisons", "errors"}) EXPECT_TRUE(results.contains(key)) << key;
  std::ifstream in(log("probe"));
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // 48 synthetic images leave small test sets: a task may fail on a single class, but the
  // tables are written and every task is accounted for, scored or listed as an error.
  EXPECT_GT(results["results"].size(), 0u) << output;
  for (const char* task : {"diabetes", "site", "any_dr"}) {
    bool seen = false;
    for (const auto& r : results["results"]) seen |= r["task"] == task;
    for (const auto& e : results["errors"]) seen |= e["task"] == task;
    EXPECT_TRUE(seen) << task;
  }
  for (const auto& r : results["results"]) {
    EXPECT_TRUE(r["model"] == "seed1" || r["model"] == "seed2");
    EXPECT_GE(r["auroc"].get<double>(), 0.0);
    EXPECT_LE(r["auroc"].get<double>(), 1.0);
  }
  for (const auto& c : results["comparisons"]) EXPECT_TRUE(c["outcome"] == "win" || c["outcome"] == "tie");
  // --versus seed1: seed1 against seed2 on every (task, class) both scored, better only with
  // the higher median and p < alpha.
  std::map<std::string, const nlohmann::json*> records;
  for (const auto& r : results["results"])
    records[r["model"].get<std::string>() + "/" + r["task"].get<std::string>() + "/" + r["class"].dump()] = &r;
  EXPECT_EQ(results["versus"].size(), results["results"].size() / 2);
  for (const auto& v : results["versus"]) {
    EXPECT_EQ(v["model"], "seed1");
    EXPECT_EQ(v["other"], "seed2");
    const std::string key = "/" + v["task"].get<std::string>() + "/" + v["class"].dump();
    const double a = (*records.at("seed1" + key))["auroc_median"], b = (*records.at("seed2" + key))["auroc_median"];
    const std::string expected = !(v["p_value"].is_number() && v["p_value"].get<double>() < 0.05) ? "tie"
                                 : a > b                                                            ? "better"
                                                                                                    : "worse";
    EXPECT_EQ(v["outcome"], expected) << v.dump();
  }
  EXPECT_TRUE(std::filesystem::exists(dir_ / "results" / "results.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "results" / "results.md"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "results" / "energy.json"));
}

// The CLI's exits say what happened: a probe with no (task, model) scored fails, naming why;
// `--tasks auto` on a packed dataset makes no task of the patient id (--split-by) column.
TEST_F(EmbedEndToEnd, ProbeExitsNonZeroWithoutAResultAndAutoTasksSkipIdColumns) {
  ASSERT_EQ(run(embed(1, "--data " + path("dataset") + " --init-seed 1 --out " + path("auto.h5")), log("auto_embed")), 0);
  EXPECT_EQ(read_embeddings(path("auto.h5")).split_by, "patient_id");
  std::ofstream(dir_ / "no_tasks.json") << R"({"tasks": [{"name": "nothing", "label": "no_such_column"}]})";
  const gf::test::JobResult none = gf::test::run_job(bin_ + " probe --embeddings a=" + path("auto.h5") + " --tasks " +
                                                     path("no_tasks.json") + " --no-energy --out " + path("none"));
  EXPECT_NE(none.exit_code, 0) << none.output;
  EXPECT_NE(none.output.find("no (task, model) produced a result"), std::string::npos) << none.output;
  const gf::test::JobResult automatic = gf::test::run_job(bin_ + " probe --embeddings a=" + path("auto.h5") +
                                                          " --tasks auto --no-energy --out " + path("auto"));
  const auto tasks = read_json(dir_ / "auto" / "results.json").at("tasks");
  EXPECT_FALSE(tasks.empty()) << automatic.output;
  for (const auto& task : tasks) EXPECT_NE(task, "patient_id") << automatic.output;
}

}  // namespace
}  // namespace gf::eval
