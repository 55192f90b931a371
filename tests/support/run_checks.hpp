#pragma once
// Reading pretrain run folders in tests: the per-step losses of metrics.jsonl, and the
// largest weight difference between two runs' newest checkpoints (link gf_train, gf_model).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include "model/weights.hpp"
#include "train/checkpoint.hpp"

namespace gf::test {

inline std::map<int64_t, double> losses(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto record = nlohmann::json::parse(line);
    out[record.at("step").get<int64_t>()] = record.at("loss").get<double>();
  }
  return out;
}

// Largest |a - b| over the model tensors of the two runs' newest checkpoints.
inline double weight_difference(const std::string& run_a, const std::string& run_b) {
  const auto a = gf::model::read_safetensors(gf::train::latest_checkpoint(run_a) + "/model.safetensors").tensors;
  const auto b = gf::model::read_safetensors(gf::train::latest_checkpoint(run_b) + "/model.safetensors").tensors;
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, tensor] : a) {
    const at::Tensor other = gf::model::find_tensor(b, name);
    EXPECT_TRUE(other.defined()) << name;
    if (other.defined()) worst = std::max(worst, (tensor.to(at::kDouble) - other.to(at::kDouble)).abs().max().item<double>());
  }
  return worst;
}

}  // namespace gf::test
