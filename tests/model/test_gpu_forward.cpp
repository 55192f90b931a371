// ctest label `gpu`: the ViT's tokens on a GPU (IEEE fp32, TF32 off) equal its tokens on the
// CPU, the CPU being the peer (itself checked against timm by test_model_vit).
#include <ATen/ATen.h>
#include <ATen/Context.h>

#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "tests/support/gpu.hpp"

namespace gf::model {
namespace {

TEST(GpuForward, Fp32TokensEqualCpuTokens) {
  GF_SKIP_WITHOUT_GPU();
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  torch::NoGradGuard no_grad;
  VisionTransformer model(arch_options("vit_small_patch14_reg4", 224));
  model->init_weights(3);
  model->eval();
  at::manual_seed(5);
  const at::Tensor images = at::randn({4, 3, 224, 224});
  const at::Tensor cpu = model->forward_features(images);

  model->to(at::Device(at::kCUDA, 0));
  const at::Tensor gpu = model->forward_features(images.to(at::Device(at::kCUDA, 0))).cpu();
  ASSERT_EQ(gpu.sizes(), cpu.sizes());
  const double difference = (gpu - cpu).abs().max().item<double>();
  RecordProperty("max_abs_difference", std::to_string(difference));
  EXPECT_LE(difference, 1e-4) << "max |GPU - CPU| over " << cpu.numel() << " token values";
}

}  // namespace
}  // namespace gf::model
