// The architecture registry: names -> options, timm names/kwargs, parameter and FLOP counts.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/arch_registry.hpp"
#include "model/vit.hpp"
#include "model/weights.hpp"
#include "tests/support/fixtures.hpp"

namespace gf::model {
namespace {

TEST(ArchRegistry, SizesOfTheFamily) {
  const auto small = arch_options("vit_small_patch14_reg4", 224);
  EXPECT_EQ(small.embed_dim, 384);
  EXPECT_EQ(small.depth, 12);
  EXPECT_EQ(small.num_heads, 6);
  EXPECT_EQ(small.num_tokens(), 5 + 16 * 16);
  const auto base = arch_options("vit_base_patch14_reg4", 518);
  EXPECT_EQ(base.embed_dim, 768);
  EXPECT_EQ(base.num_heads, 12);
  const auto large = arch_options("vit_large_patch14_reg4", 518);
  EXPECT_EQ(large.embed_dim, 1024);
  EXPECT_EQ(large.depth, 24);
  EXPECT_EQ(large.num_heads, 16);
  EXPECT_EQ(arch_names().size(), 4u);
}

TEST(ArchRegistry, BadNamesAndSizesAreErrors) {
  try {
    arch_options("vit_huge", 224);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("vit_small_patch14_reg4, vit_base_patch14_reg4"), std::string::npos);
  }
  EXPECT_THROW(arch_options("vit_small_patch14_reg4", 225), std::runtime_error);
  EXPECT_THROW(arch_options("vit_small_patch14_reg4", 0), std::runtime_error);
}

// The kwargs the fixtures' timm models were created with, as their config.json records them.
TEST(ArchRegistry, TimmKwargsOfTheFixtureModel) {
  const auto options = arch_options("vit_tiny_patch14_reg4", 112);
  std::ifstream in(gf::test::vit_fixture("tiny_112/config.json"));
  const auto config = nlohmann::json::parse(in);
  EXPECT_EQ(timm_model_name(options), config.at("timm_model").get<std::string>());
  EXPECT_EQ(nlohmann::json::parse(timm_kwargs_json(options)), config.at("timm_kwargs"));
  EXPECT_EQ(timm_kwargs_json(options), R"({"depth": 3, "embed_dim": 96, "img_size": 112, "num_classes": 0, "num_heads": 3})");
  EXPECT_EQ(timm_kwargs_json(arch_options("vit_large_patch14_reg4", 392)), R"({"img_size": 392, "num_classes": 0})");
  EXPECT_EQ(timm_model_name(arch_options("vit_base_patch14_reg4", 392)), "vit_base_patch14_reg4_dinov2");
}

TEST(ArchRegistry, ParameterCountEqualsTheBuiltModel) {
  for (const char* arch : {"vit_tiny_patch14_reg4", "vit_small_patch14_reg4", "vit_base_patch14_reg4"}) {
    const auto options = arch_options(arch, 224);
    VisionTransformer model(options);
    int64_t total = 0;
    for (const auto& p : model->parameters()) total += p.numel();
    EXPECT_EQ(parameter_count(options), total) << arch;
  }
}

// FLOPs counted independently: every Linear/conv of the model as 2 * in * out per token
// (or per patch), plus the two attention matmuls 2 * 2 * T^2 * D.
TEST(ArchRegistry, ForwardFlopsCountEveryMatmul) {
  const auto options = arch_options("vit_small_patch14_reg4", 224);
  VisionTransformer model(options);
  const double tokens = static_cast<double>(options.num_tokens());
  double flops = 0;
  for (const auto& item : model->named_parameters()) {
    const auto& w = item.value();
    if (item.key() == "patch_embed.proj.weight") flops += 2.0 * options.num_patches() * w.numel();
    else if (w.dim() == 2) flops += 2.0 * tokens * w.numel();
  }
  flops += options.depth * 4.0 * tokens * tokens * options.embed_dim;
  EXPECT_DOUBLE_EQ(forward_flops(options), flops);
}

TEST(Vit, InitWeightsIsSeededAndTimmShaped) {
  VisionTransformer a(arch_options("vit_tiny_patch14_reg4", 56)), b(arch_options("vit_tiny_patch14_reg4", 56));
  a->init_weights(7);
  b->init_weights(7);
  const auto sa = model_state_dict(*a), sb = model_state_dict(*b);
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(at::equal(sa[i].second, sb[i].second)) << sa[i].first;
  b->init_weights(8);
  EXPECT_FALSE(at::equal(find_tensor(sa, "pos_embed"), find_tensor(model_state_dict(*b), "pos_embed")));
  EXPECT_TRUE(at::equal(find_tensor(sa, "blocks.0.ls1.gamma"), at::full({96}, 1e-5)));
  EXPECT_TRUE(at::equal(find_tensor(sa, "blocks.0.attn.qkv.bias"), at::zeros({288})));
  EXPECT_LT(find_tensor(sa, "cls_token").abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(find_tensor(sa, "blocks.0.mlp.fc1.weight").std().item<double>(), 0.02, 0.002);
}

TEST(Vit, PoolsAndInputChecks) {
  const auto tokens = at::arange(2 * 7 * 3, at::kFloat).reshape({2, 7, 3});
  EXPECT_TRUE(at::equal(pool_tokens(tokens, Pool::kCls, 5), tokens.select(1, 0)));
  EXPECT_TRUE(at::allclose(pool_tokens(tokens, Pool::kAvg, 5), tokens.slice(1, 5).mean(1)));
  EXPECT_TRUE(at::allclose(pool_tokens(tokens, Pool::kMeanAll, 5), tokens.mean(1)));
  EXPECT_EQ(parse_pool("mean_all"), Pool::kMeanAll);
  EXPECT_EQ(pool_name(parse_pool("avg")), "avg");
  EXPECT_THROW(parse_pool("token"), std::runtime_error);
  VisionTransformer model(arch_options("vit_tiny_patch14_reg4", 56));
  EXPECT_THROW(model->forward_features(at::zeros({1, 3, 42, 42})), std::runtime_error);
}

}  // namespace
}  // namespace gf::model
