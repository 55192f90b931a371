#pragma once
// The embeddings HDF5 file that `embed` writes and `probe` reads (h5py reads it unchanged):
//   embeddings  float32 or float16 [N, D]
//   ids         variable-length UTF-8 strings [N]
//   split       variable-length strings [N] ("train" / "test"; absent for the folder form)
//   labels/<c>  one dataset per label column, [N], dtype and attributes as in the packed
//               shards (int64, -1 = missing, or float64, NaN = missing; attribute "type", and
//               "categories" for category columns)
//   attributes  arch, img_size, pool, weights_sha256 (strings / int64); split_by (string, the
//               label column the dataset's train/test split grouped by, when it has one)
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gf::eval {

enum class EmbeddingDtype { kFloat32, kFloat16 };
EmbeddingDtype parse_embedding_dtype(const std::string& name);  // "float32" | "float16"

// One label column. Values are held as double with NaN for missing; `integer` records the
// on-disk type so a rewrite keeps it (and so -1 is read back as missing only for integers).
struct LabelColumn {
  std::vector<double> values;
  bool integer = true;
  std::string type;                     // the shards' "type" attribute (int, yesno, category, float), if known
  std::vector<std::string> categories;  // type category: value i means categories[i]
};

struct EmbeddingTable {
  int64_t dim = 0;
  std::vector<float> values;           // row-major [ids.size(), dim]
  std::vector<std::string> ids;
  std::vector<std::string> split;      // empty, or one entry per row
  std::map<std::string, LabelColumn> labels;
  std::string arch, pool, weights_sha256;
  std::string split_by;  // "" = no split, or the folder form
  int64_t img_size = 0;

  int64_t rows() const { return static_cast<int64_t>(ids.size()); }
  const float* row(int64_t i) const { return values.data() + i * dim; }
};

// Writes to `path` through a temporary name, fsync and rename. float16 halves the storage;
// it is rounded from the float32 values (round to nearest even).
void write_embeddings(const std::string& path, const EmbeddingTable& table, EmbeddingDtype dtype);
// Reads a file written by write_embeddings (or h5py with the same layout); float16 is widened.
// Errors name the file and the dataset that is missing or mis-shaped.
EmbeddingTable read_embeddings(const std::string& path);

}  // namespace gf::eval
