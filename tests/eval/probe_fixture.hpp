#pragma once
// Synthetic embeddings files for the probe tests: one "dataset" of images with DR grades,
// AMD, diabetes and a continuous column, embedded by models of different quality (class
// signal shared, projection and noise per model).
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "eval/embeddings_file.hpp"

namespace gf::eval::testing {

struct SyntheticOptions {
  int rows = 360;
  int dim = 24;
  uint64_t dataset_seed = 1;   // labels, ids, split and the class signal
  uint64_t model_seed = 10;    // the model's projection and noise
  double noise = 1.0;
  std::string id_prefix = "img_";
  bool constant_feature = false;  // feature 0 the same in every row (StandardScaler keeps scale 1)
  bool site = false;  // a category column "site": A, B, C for 3/5, 1/5, 1/5 of the rows
};

inline EmbeddingTable synthetic_table(const SyntheticOptions& o) {
  std::mt19937_64 data_rng(o.dataset_seed), model_rng(o.model_seed);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uniform(0, 1);
  constexpr int kLatent = 8;
  // Class signal in latent space: one direction per grade, one for AMD.
  std::vector<std::vector<double>> grade_mean(5, std::vector<double>(kLatent)), amd_mean(1, std::vector<double>(kLatent));
  for (auto& m : grade_mean)
    for (auto& v : m) v = 0.9 * normal(data_rng);
  for (auto& v : amd_mean[0]) v = 0.8 * normal(data_rng);
  std::vector<double> projection(static_cast<size_t>(o.dim * kLatent));
  for (auto& v : projection) v = normal(model_rng) / std::sqrt(double(kLatent));

  EmbeddingTable table;
  table.dim = o.dim;
  table.arch = "synthetic";
  table.pool = "mean_all";
  table.img_size = 14;
  LabelColumn grade, amd, diabetes, cdr, site;
  cdr.integer = false;
  site.type = "category";
  site.categories = {"A", "B", "C"};
  const double grade_cdf[5] = {0.4, 0.6, 0.75, 0.9, 1.0};
  for (int i = 0; i < o.rows; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "%05d", i);
    table.ids.push_back(o.id_prefix + id);
    table.split.push_back(uniform(data_rng) < 0.7 ? "train" : "test");
    const double u = uniform(data_rng);
    int g = 0;
    while (u > grade_cdf[g]) ++g;
    const int a = uniform(data_rng) < 0.3;
    grade.values.push_back(g);
    amd.values.push_back(a);
    diabetes.values.push_back(i % 17 == 0 ? NAN : double(uniform(data_rng) < 0.6));
    cdr.values.push_back(0.3 + 0.1 * uniform(data_rng));
    site.values.push_back(i % 5 < 3 ? 0 : i % 5 - 2);  // no draw: the other columns stay as they were
    std::vector<double> latent(kLatent);
    for (int k = 0; k < kLatent; ++k) latent[k] = grade_mean[g][k] + a * amd_mean[0][k] + normal(data_rng);
    for (int d = 0; d < o.dim; ++d) {
      double v = 0;
      for (int k = 0; k < kLatent; ++k) v += projection[d * kLatent + k] * latent[k];
      const double value = v + o.noise * normal(model_rng) + 3.0;
      table.values.push_back(static_cast<float>(o.constant_feature && d == 0 ? 2.5 : value));
    }
  }
  table.labels["grade"] = grade;
  table.labels["amd"] = amd;
  table.labels["diabetes"] = diabetes;
  table.labels["cdr"] = cdr;
  if (o.site) table.labels["site"] = site;
  return table;
}

}  // namespace gf::eval::testing
