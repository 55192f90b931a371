// ctest label `gpu`: `greenfound embed --device cuda` writes the embeddings the CPU writes
// (fp32: IEEE on the GPU, within 1e-3), and --precision bf16 (autocast) stays close to them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "eval/embeddings_file.hpp"
#include "tests/eval/eval_test_support.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/gpu.hpp"
#include "tests/support/run_job.hpp"

namespace gf::eval {
namespace {


class GpuEmbed : public ::testing::Test {
 protected:
  void SetUp() override {
    GF_SKIP_WITHOUT_GPU();
    dir_ = testing::scratch_dir();
    bin_ = gf::test::greenfound_bin();
    ASSERT_EQ(run(" synth --out " + path("images") + " --n 24 --seed 3 --size 128x112 --threads 2 --quiet"), 0);
    ASSERT_EQ(run(" pack --images " + path("images") + " --labels " + path("images/labels.csv") +
                  " --id-column image_id --resolution 128 --threads 2 --quiet --out " + path("dataset")),
              0);
  }

  int run(const std::string& args) {
    const auto job = gf::test::run_job(bin_ + args);
    if (job.exit_code != 0) ADD_FAILURE() << bin_ << args << "\n" << job.output;
    return job.exit_code;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // ViT-S/14-reg4 at 112 px from a seeded random init, the whole dataset.
  EmbeddingTable embed(const std::string& flags, const std::string& out) {
    EXPECT_EQ(run(" embed --data " + path("dataset") + " --arch vit_small_patch14_reg4 --img-size 112 --init-seed 1"
                  " --batch-size 8 --no-energy --out " + path(out) + " " + flags),
              0);
    return read_embeddings(path(out));
  }

  std::filesystem::path dir_;
  std::string bin_;
};

TEST_F(GpuEmbed, CudaEqualsCpu) {
  const EmbeddingTable cpu = embed("--device cpu", "cpu.h5");
  const EmbeddingTable gpu = embed("--device cuda", "gpu.h5");
  ASSERT_EQ(gpu.ids, cpu.ids);
  ASSERT_EQ(gpu.values.size(), cpu.values.size());
  double worst = 0;
  for (size_t i = 0; i < cpu.values.size(); ++i) worst = std::max(worst, double(std::fabs(gpu.values[i] - cpu.values[i])));
  RecordProperty("max_abs_difference", std::to_string(worst));
  EXPECT_LE(worst, 1e-3);
}

TEST_F(GpuEmbed, Bf16AutocastStaysCloseToFp32) {
  const EmbeddingTable fp32 = embed("--device cuda", "fp32.h5");
  const EmbeddingTable bf16 = embed("--device cuda --precision bf16", "bf16.h5");
  ASSERT_EQ(bf16.values.size(), fp32.values.size());
  for (int64_t r = 0; r < fp32.rows(); ++r) {
    double dot = 0, a2 = 0, b2 = 0;
    for (int64_t d = 0; d < fp32.dim; ++d) {
      const double a = fp32.values[r * fp32.dim + d], b = bf16.values[r * fp32.dim + d];
      dot += a * b, a2 += a * a, b2 += b * b;
    }
    EXPECT_GE(dot / std::sqrt(a2 * b2), 0.99) << "row " << r << " (" << fp32.ids[r] << ")";
  }
  const auto refused = gf::test::run_job(bin_ + " embed --data " + path("dataset") +
                                         " --arch vit_small_patch14_reg4 --img-size 112 --init-seed 1 --device cpu"
                                         " --precision bf16 --no-energy --out " + path("refused.h5"));
  EXPECT_NE(refused.exit_code, 0);  // bf16 is refused off the GPU
  EXPECT_NE(refused.output.find("--precision"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace gf::eval
