// Loader throughput at 392 px (training augmentations, float batches) from packed 448 px
// shards, with 1 worker and with all hardware threads, next to a baseline measured in the
// same run that decodes each original camera JPEG and augments it per sample (what a loader
// without packing does); and pack throughput (decode + published preprocessing + encode).
// The originals are synthetic fundus photographs (data/synth.hpp) at a camera-like frame size
// (default 1600x1200; public fundus sets range from ~1000 to ~4000 px wide).
// Usage: bench_loader [IMAGES (default 128)] [FRAME_WIDTH (default 1600; height 3/4 of it)]
//                     [WORK_DIR (default ./bench-loader-work)]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.hpp"
#include "data/image_codec.hpp"
#include "data/loader.hpp"
#include "data/pack.hpp"
#include "data/synth.hpp"

namespace {

namespace fs = std::filesystem;
using gf::data::Loader;
using gf::data::LoaderOptions;

constexpr int kImgSize = 392;
constexpr int64_t kBatch = 16;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Images/s of two training epochs over the packed dataset (after a warm-up batch).
double loader_rate(const std::string& dataset, int workers) {
  LoaderOptions o;
  o.dataset_dir = dataset;
  o.global_batch_size = kBatch;
  o.img_size = kImgSize;
  o.workers = workers;
  o.prefetch = 4;
  o.verify = gf::data::Verify::kSizes;
  Loader loader(o);
  loader.start(0, 0);
  loader.next();
  const auto start = std::chrono::steady_clock::now();
  int64_t images = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    if (epoch > 0) loader.start(epoch, 0);
    while (auto batch = loader.next()) images += batch->images.size(0);
  }
  return static_cast<double>(images) / seconds_since(start);
}

// Images/s of the baseline: read + decode the original JPEG + the same augmentation, on
// `threads` threads, each sample on its own (ATen single-threaded per thread, as the loader).
double baseline_rate(const std::vector<std::string>& files, int threads) {
  std::atomic<size_t> next{0};
  const gf::data::AugmentOptions augment;
  auto work = [&] {
    at::get_num_threads();
    at::set_num_threads(1);
    for (size_t i = next++; i < files.size(); i = next++) {
      gf::data::SampleRng rng(0, 0, static_cast<int64_t>(i));
      const at::Tensor out = gf::data::normalize_to_float(gf::data::augment_train(gf::data::read_image_file(files[i]), augment, rng));
      (void)out;
    }
  };
  const int previous = at::get_num_threads();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  const double rate = static_cast<double>(files.size()) / seconds_since(start);
  at::set_num_threads(previous);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  const int images = argc > 1 ? std::atoi(argv[1]) : 128;
  const int frame_width = argc > 2 ? std::atoi(argv[2]) : 1600;
  const fs::path work = fs::absolute(argc > 3 ? argv[3] : "bench-loader-work");
  const int all = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  fs::remove_all(work);
  fs::create_directories(work);

  gf::data::SynthOptions synth;
  synth.count = images;
  synth.seed = 1;
  synth.frame_size = cv::Size(frame_width, frame_width * 3 / 4);
  gf::data::write_synth_dataset(synth, (work / "originals").string());
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(work / "originals")) {
    if (e.path().extension() == ".jpg") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());

  gf::data::PackOptions pack;
  pack.images_dir = (work / "originals").string();
  pack.out_dir = (work / "packed").string();
  pack.resolution = 448;  // CPU-sized; the published recipe packs at 1024 (data/pack.hpp)
  pack.show_progress = false;
  pack.threads = all;
  const gf::data::PackResult packed = gf::data::pack(pack);

  std::printf("bench_loader: %d synthetic originals of %dx%d, packed at %d px (%s), batches of %lld at %d px, %d threads\n",
              images, synth.frame_size.width, synth.frame_size.height, pack.resolution,
              gf::data::to_string(pack.encoding).c_str(), static_cast<long long>(kBatch), kImgSize, all);
  std::printf("  pack (decode + border crop + Lanczos + JPEG, %2d threads): %8.1f images/s\n", all, packed.images_per_second);
  for (int threads : {1, all}) {
    const double loader = loader_rate(pack.out_dir, threads);
    const double baseline = baseline_rate(files, threads);
    std::printf("  %2d thread(s): loader from shards %8.1f images/s | baseline (decode original JPEG + augment) %8.1f images/s"
                " | x%.2f\n",
                threads, loader, baseline, loader / baseline);
  }
  fs::remove_all(work);
  return 0;
}
