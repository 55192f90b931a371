#pragma once
// Reading tests/fixtures in tests: NAME.bin (raw little-endian float32, C order) with its
// shape in NAME.json, JSON files, and the timm ViT fixtures' folder.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/environment.hpp"

namespace gf::test {

inline std::string vit_fixture(const std::string& name) { return fixtures_dir() + "/timm_vit_reg4/" + name; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return nlohmann::json::parse(in);
}

// `stem` without extension: reads stem.json for the shape and stem.bin for the values.
inline at::Tensor read_bin(const std::string& stem) {
  const auto shape = read_json(stem + ".json").at("shape").get<std::vector<int64_t>>();
  at::Tensor tensor = at::empty(shape, at::kFloat);
  std::ifstream in(stem + ".bin", std::ios::binary);
  in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes()));
  if (!in || in.gcount() != static_cast<std::streamsize>(tensor.nbytes()))
    throw std::runtime_error(stem + ".bin: shorter than its shape says");
  return tensor;
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// Max |a - b| in double; shapes must agree.
inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) throw std::runtime_error("max_abs_diff: shapes differ");
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace gf::test
