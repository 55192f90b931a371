// The published efficiency claims of the evaluation side, measured here:
//  - embedding speed: `embed` images/s of vit_small_patch14_reg4 at 392 px (RETFound-Green)
//    against vit_large_patch14_reg4 at 224 px (the ViT-L of RETFound-MEH / DERETFound), random
//    weights, the same folder of synthetic fundus JPEGs, the same threads ("2.7x faster");
//  - storage: bytes per embedding, 384 vs 1024 float32 ("2.6x less"), and the file sizes;
//  - probe seconds per task at 384 vs 1024 dims (binary and 5-class, BRSET-like sizes).
// Next to them, a float32 matmul GFLOP/s measured in the same run as the machine's baseline.
//
//   bench_eval [--threads 2] [--images 4] [--probe-rows 3000]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <unistd.h>
#include <random>
#include <string>

#include "data/synth.hpp"
#include "eval/embed.hpp"
#include "eval/embeddings_file.hpp"
#include "eval/probe.hpp"
#include "model/arch_registry.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int threads = 2;
  int images = 4;
  int probe_rows = 3000;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double matmul_gflops() {
  const at::Tensor a = at::randn({1024, 1024}), b = at::randn({1024, 1024});
  at::matmul(a, b);
  const auto start = Clock::now();
  const int reps = 10;
  for (int i = 0; i < reps; ++i) at::matmul(a, b);
  return 2.0 * 1024 * 1024 * 1024 * reps / seconds_since(start) / 1e9;
}

struct EmbedFigure {
  double images_per_second = 0, gflops_per_image = 0;
  int64_t tokens = 0, bytes = 0;
};

EmbedFigure embed_speed(const std::string& arch, int64_t img_size, const std::filesystem::path& images,
                        const std::filesystem::path& dir, int threads) {
  gf::eval::EmbedConfig config;
  config.images_dir = images.string();
  config.arch = arch;
  config.img_size = img_size;
  config.random_init = true;
  config.seed = 0;
  config.out = (dir / (arch + "_" + std::to_string(img_size) + ".h5")).string();
  config.batch_size = 1;  // as the published inference notebooks (batch_size=1)
  config.threads = threads;
  config.device = "cpu";
  config.track_energy = false;
  config.verbose = false;
  // A first run warms the allocator, thread pool and page cache; the second is timed.
  const auto summary = gf::eval::run_embed(config);
  (void)summary;
  const auto timed = gf::eval::run_embed(config);
  const auto options = gf::model::arch_options(arch, img_size);
  return {timed.images_per_second, gf::model::forward_flops(options) / 1e9, options.num_tokens(),
          timed.bytes_per_embedding};
}

// File bytes per row of an embeddings file of `rows` random embeddings.
double file_bytes_per_row(int64_t dim, gf::eval::EmbeddingDtype dtype, const std::filesystem::path& path) {
  const int64_t rows = 2000;
  gf::eval::EmbeddingTable table;
  table.dim = dim;
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < rows * dim; ++i) table.values.push_back(normal(rng));
  for (int64_t i = 0; i < rows; ++i) table.ids.push_back("img_" + std::to_string(i));
  gf::eval::write_embeddings(path.string(), table, dtype);
  return static_cast<double>(std::filesystem::file_size(path)) / rows;
}

// An embeddings file of `rows` images with a 5-grade label and a 70/30 split: the grade mean
// moves along a random direction of the space, plus unit noise.
void write_probe_file(int64_t dim, int rows, const std::filesystem::path& path) {
  gf::eval::EmbeddingTable table;
  table.dim = dim;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> grade(0, 4);
  std::vector<float> direction(dim);
  for (auto& v : direction) v = normal(rng) / std::sqrt(float(dim)) * 6;
  gf::eval::LabelColumn grades;
  for (int i = 0; i < rows; ++i) {
    const int g = grade(rng);
    grades.values.push_back(g);
    table.ids.push_back("img_" + std::to_string(i));
    table.split.push_back(i % 10 < 7 ? "train" : "test");
    for (int64_t d = 0; d < dim; ++d) table.values.push_back(direction[d] * g / 4 + normal(rng));
  }
  table.labels["grade"] = grades;
  gf::eval::write_embeddings(path.string(), table, gf::eval::EmbeddingDtype::kFloat32);
}

double probe_seconds_per_task(int64_t dim, const Args& args, const std::filesystem::path& dir) {
  const auto file = dir / ("probe_" + std::to_string(dim) + ".h5");
  write_probe_file(dim, args.probe_rows, file);
  std::ofstream(dir / "tasks.json") << R"({"tasks": [{"name": "grade", "label": "grade", "kind": "multiclass"},
    {"name": "referable", "label": "grade > 1"}, {"name": "any", "label": "grade > 0"}]})";
  gf::eval::ProbeConfig config;
  config.embeddings.push_back({"model", "", file.string()});
  config.tasks = (dir / "tasks.json").string();
  config.out_dir = (dir / ("probe_out_" + std::to_string(dim))).string();
  config.threads = args.threads;
  config.track_energy = false;
  config.verbose = false;
  const auto start = Clock::now();
  gf::eval::run_probe(config);
  return seconds_since(start) / 3;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const int value = std::stoi(argv[i + 1]);
    if (key == "--threads") args.threads = value;
    else if (key == "--images") args.images = value;
    else if (key == "--probe-rows") args.probe_rows = value;
    else {
      std::fprintf(stderr, "bench_eval: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  at::set_num_threads(args.threads);
  const auto dir = std::filesystem::temp_directory_path() / ("bench_eval_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::printf("bench_eval: %d threads\n", args.threads);
  std::printf("baseline: float32 matmul 1024^3: %.1f GFLOP/s\n\n", matmul_gflops());

  gf::data::SynthOptions synth;
  synth.count = args.images;
  synth.seed = 5;
  synth.threads = args.threads;
  synth.frame_size = {640, 480};
  gf::data::write_synth_dataset(synth, (dir / "images").string());

  std::printf("embed (folder of %d synthetic 640x480 JPEGs, batch 1, random weights):\n", args.images);
  std::printf("  %-24s %5s %7s %11s %9s %10s %16s\n", "arch", "px", "tokens", "GFLOP/img", "images/s", "bytes/emb",
              "effective GFLOP/s");
  const EmbedFigure green = embed_speed("vit_small_patch14_reg4", 392, dir / "images", dir, args.threads);
  const EmbedFigure large = embed_speed("vit_large_patch14_reg4", 224, dir / "images", dir, args.threads);
  for (const auto& [name, size, f] : {std::tuple{"vit_small_patch14_reg4", 392, green}, std::tuple{"vit_large_patch14_reg4", 224, large}})
    std::printf("  %-24s %5d %7lld %11.1f %9.3f %10lld %16.1f\n", name, size, static_cast<long long>(f.tokens),
                f.gflops_per_image, f.images_per_second, static_cast<long long>(f.bytes),
                f.images_per_second * f.gflops_per_image);
  std::printf("  speed-up small@392 over large@224: %.2fx (published: 2.7x; analytic FLOP ratio %.2fx)\n\n",
              green.images_per_second / large.images_per_second, large.gflops_per_image / green.gflops_per_image);

  std::printf("storage per embedding:\n");
  for (const auto& [name, dtype] : {std::pair{"float32", gf::eval::EmbeddingDtype::kFloat32},
                                    std::pair{"float16", gf::eval::EmbeddingDtype::kFloat16}}) {
    const double small = file_bytes_per_row(384, dtype, dir / "small.h5");
    const double big = file_bytes_per_row(1024, dtype, dir / "big.h5");
    const int element = dtype == gf::eval::EmbeddingDtype::kFloat16 ? 2 : 4;
    std::printf("  %s: 384 dims %d B vs 1024 dims %d B (%.2fx less; published 2.6x); file bytes/row %.0f vs %.0f (%.2fx)\n",
                name, 384 * element, 1024 * element, 1024.0 / 384.0, small, big, big / small);
  }

  std::printf("\nprobe (StandardScaler + logistic regression, %d rows, 70/30 split, 3 tasks: 5-class + 2 binary):\n",
              args.probe_rows);
  const double probe_small = probe_seconds_per_task(384, args, dir);
  const double probe_large = probe_seconds_per_task(1024, args, dir);
  std::printf("  384 dims: %.3f s per task; 1024 dims: %.3f s per task (%.2fx; published BRSET fits: 5.85 s vs 19.43 s "
              "for 9 tasks = 3.3x)\n",
              probe_small, probe_large, probe_large / probe_small);
  std::filesystem::remove_all(dir);
  return 0;
}
