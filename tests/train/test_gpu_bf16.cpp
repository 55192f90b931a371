// ctest label `gpu`: one Token Reconstruction training step under bf16 autocast (the
// published torch.cuda.amp.autocast(dtype=torch.bfloat16)) agrees with the same step in fp32:
// the loss within 1e-2 relative, and the weights keep their names and float32 dtypes.
#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <cmath>
#include <map>

#include "model/arch_registry.hpp"
#include "model/autocast.hpp"
#include "model/token_reconstruction.hpp"
#include "tests/support/gpu.hpp"
#include "train/optimizer.hpp"

namespace gf::train {
namespace {

struct StepResult {
  double loss = 0;
  double grad_norm = 0;
  std::map<std::string, at::ScalarType> dtypes_before, dtypes_after;
};

// One published step (teacher forward, student forward/backward, clip 0.1, AdamW) of a
// ViT-S/14-reg4 wrapper from seeded weights, on fixed images and draws.
StepResult train_step(bool bf16, const at::Tensor& images, const model::CorruptionDraws& draws) {
  const at::Device device(at::kCUDA, 0);
  const model::VitOptions vit = model::arch_options("vit_small_patch14_reg4", images.size(-1));
  model::VisionTransformer student(vit);
  student->init_weights(7);
  at::manual_seed(7);  // the projector
  model::TokenReconstruction wrapper(student, model::TokenReconstructionOptions{});
  wrapper->to_device(device);
  wrapper->train();
  OptimConfig config;
  Optimizer optimizer(wrapper->optimized_parameters(), config);
  optimizer.set_lr(5e-5);

  StepResult result;
  for (const auto& [name, tensor] : wrapper->state()) result.dtypes_before[name] = tensor.scalar_type();
  at::Tensor target;
  model::TokenReconstructionOutput out;
  {
    const model::CudaBf16Autocast autocast(bf16);
    target = wrapper->teacher_forward(images);
    out = wrapper->student_forward(images, target, draws, images.size(0) - 1);
  }
  out.loss.backward();
  result.loss = out.loss.item<double>();
  result.grad_norm = clip_grad_norm(wrapper->parameters(), config.clip_grad_norm).total_norm.item<double>();
  optimizer.step();
  for (const auto& [name, tensor] : wrapper->state()) result.dtypes_after[name] = tensor.scalar_type();
  return result;
}

TEST(GpuBf16, AutocastStepAgreesWithFp32) {
  GF_SKIP_WITHOUT_GPU();
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  const at::Device device(at::kCUDA, 0);
  const model::VitOptions vit = model::arch_options("vit_small_patch14_reg4", 224);
  at::manual_seed(11);
  const at::Tensor images = at::randn({8, 3, 224, 224}).clamp(-1, 1).to(device);
  const model::CorruptionDraws draws = model::draw_corruption({0, 0, 0}, {0, 1, 2, 3, 4, 5, 6, 7}, vit, device);

  const StepResult fp32 = train_step(false, images, draws);
  const StepResult bf16 = train_step(true, images, draws);
  ASSERT_TRUE(std::isfinite(fp32.loss) && fp32.loss > 0) << fp32.loss;
  ASSERT_TRUE(std::isfinite(bf16.loss)) << bf16.loss;
  EXPECT_LE(std::fabs(bf16.loss - fp32.loss), 1e-2 * fp32.loss) << "bf16 loss " << bf16.loss << ", fp32 " << fp32.loss;
  EXPECT_TRUE(std::isfinite(bf16.grad_norm) && bf16.grad_norm > 0) << bf16.grad_norm;
  // Autocast computes in bf16 but never changes the weights: same names, float32 throughout.
  EXPECT_EQ(bf16.dtypes_after, bf16.dtypes_before);
  EXPECT_EQ(bf16.dtypes_after, fp32.dtypes_after);
  for (const auto& [name, dtype] : bf16.dtypes_after) EXPECT_EQ(dtype, at::kFloat) << name;
}

}  // namespace
}  // namespace gf::train
