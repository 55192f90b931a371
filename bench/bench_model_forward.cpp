// Forward throughput of vit_small_patch14_reg4 on CPU (2 threads, batch 8) next to the matmul
// GFLOP/s this machine reaches in the same run: achieved forward GFLOP/s uses the registry's
// analytic FLOPs, so the ratio says how close the model runs to the BLAS it sits on.
// Usage: bench_model_forward [ITERATIONS (default 3)]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/arch_registry.hpp"
#include "model/vit.hpp"

namespace {

constexpr int kThreads = 2;
constexpr int64_t kBatch = 8;

template <typename Fn>
double seconds_per_call(Fn fn, int iterations) {
  fn();  // warm-up: allocations, OpenBLAS thread start
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
}

// GFLOP/s of an [m, k] x [k, n] float32 matmul.
double matmul_gflops(int64_t m, int64_t k, int64_t n, int iterations) {
  const auto a = at::randn({m, k}), b = at::randn({k, n});
  auto c = at::empty({m, n});
  const double s = seconds_per_call([&] { at::mm_out(c, a, b); }, iterations);
  return 2.0 * static_cast<double>(m * k * n) / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  at::set_num_threads(kThreads);
  torch::NoGradGuard no_grad;
  std::printf("bench_model_forward: %d threads, batch %lld, %d timed iterations each (float32, CPU)\n", kThreads,
              static_cast<long long>(kBatch), iterations);

  const double square = matmul_gflops(1024, 1024, 1024, 10 * iterations);
  std::printf("baseline matmul 1024x1024x1024          %8.1f GFLOP/s\n", square);

  std::printf("%-24s %5s %10s %12s %12s %12s %8s\n", "model", "px", "img/s", "GFLOP/img", "fwd GFLOP/s", "mm GFLOP/s",
              "fwd/mm");
  for (const int64_t px : {224, 392}) {
    auto options = gf::model::arch_options("vit_small_patch14_reg4", px);
    gf::model::VisionTransformer model(options);
    model->init_weights(0);
    model->eval();
    const auto images = at::rand({kBatch, 3, px, px});
    const double s = seconds_per_call([&] { model->forward_features(images); }, iterations);
    const double images_per_s = static_cast<double>(kBatch) / s;
    const double gflop = gf::model::forward_flops(options) / 1e9;
    // The MLP's fc1 at this token count: the forward's dominant matmul shape.
    const double fc1 = matmul_gflops(kBatch * options.num_tokens(), options.embed_dim, 4 * options.embed_dim, iterations);
    std::printf("%-24s %5lld %10.2f %12.2f %12.1f %12.1f %7.0f%%\n", options.arch.c_str(), static_cast<long long>(px),
                images_per_s, gflop, gflop * images_per_s, fc1, 100.0 * gflop * images_per_s / fc1);
  }
  std::printf("(mm GFLOP/s per row: an fc1-shaped matmul [B*T, D] x [D, 4D] at that size)\n");
  return 0;
}
