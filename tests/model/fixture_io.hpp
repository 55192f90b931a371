#pragma once
// Reading the fixtures' raw float32 NAME.bin files (shape in the sibling NAME.json).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace gf::model::testing {

inline std::string fixtures_dir() {
  const char* dir = std::getenv("GF_FIXTURES");
  if (!dir) throw std::runtime_error("GF_FIXTURES is not set (run the tests under ctest)");
  return dir;
}

inline std::string vit_fixture(const std::string& name) { return fixtures_dir() + "/timm_vit_reg4/" + name; }

inline at::Tensor read_bin(const std::string& stem) {
  std::ifstream meta_in(stem + ".json");
  if (!meta_in) throw std::runtime_error(stem + ".json: cannot open");
  const auto meta = nlohmann::json::parse(meta_in);
  auto tensor = at::empty(meta.at("shape").get<std::vector<int64_t>>(), at::kFloat);
  std::ifstream in(stem + ".bin", std::ios::binary);
  in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.numel() * sizeof(float)));
  if (in.gcount() != static_cast<std::streamsize>(tensor.numel() * sizeof(float)))
    throw std::runtime_error(stem + ".bin: shorter than its shape");
  return tensor;
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a - b).abs().max().item<double>();
}

}  // namespace gf::model::testing
