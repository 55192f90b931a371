#pragma once
// A packed dataset folder (DESIGN.md "Data (HDF5)"): manifest.json plus shard-NNNNN.h5 files.
// Opening reads the manifest and every shard's small per-sample datasets (ids, sources,
// split, labels) into memory and keeps one HDF5 handle per shard; image reads go through
// one mutex (Debian's libhdf5 serialises every call anyway) and decoding happens outside it,
// so many threads may call read_encoded/decode at once.
//
// Shard layout (h5py reads it as is, and a dataset h5py writes this way opens here):
//   images          vlen uint8 [N] (one encoded JPEG/PNG per element), or
//                   uint8 [N,H,W,3] chunked (1,H,W,3) for raw RGB
//   ids, sources    variable-length UTF-8 strings [N] (fixed-length strings also read)
//   split           uint8 [N], 0 = train, 1 = test (only when the dataset has a split)
//   labels/<task>   int64 [N] (missing = -1) or float64 [N] (missing = NaN)
//   attributes      format_version, resolution, encoding, first_index, preprocessing (JSON)
#include <opencv2/core.hpp>

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace gf::data {

inline constexpr int kFormatVersion = 1;

enum class Encoding { kJpeg, kPng, kRaw };
std::string to_string(Encoding encoding);
Encoding parse_encoding(const std::string& name);  // "jpeg" | "png" | "raw"

enum class LabelType {
  kInteger,   // integer classes as written in the CSV
  kYesNo,     // yes/no (true/false, y/n) -> 1/0
  kCategory,  // text categories -> 0..K-1 in sorted order, names in `categories`
  kFloat,     // any other number; missing = NaN
};
std::string to_string(LabelType type);
LabelType parse_label_type(const std::string& name);  // "int" | "yesno" | "category" | "float"
// "" when `name` can name a label column (it becomes the HDF5 dataset labels/<name>), else
// what is wrong with it: empty, ".", "..", or holding '/' or a control character.
std::string label_name_problem(const std::string& name);

struct LabelColumn {
  std::string name;
  LabelType type = LabelType::kInteger;
  std::vector<std::string> categories;  // kCategory: value i means categories[i]
};

struct ShardInfo {
  std::string file;         // relative to the dataset folder: "shard-00000.h5"
  int64_t count = 0;
  int64_t first_index = 0;  // dataset index of the shard's element 0
  int64_t bytes = 0;
  std::string sha256;       // of the whole file, lower-case hex
};

struct SplitInfo {
  std::string by;            // the CSV column grouping images (patient id); "" = no split
  double test_fraction = 0;
  uint64_t seed = 0;
  int64_t train_count = 0;
  int64_t test_count = 0;
};

struct Manifest {
  int format_version = kFormatVersion;
  int64_t count = 0;
  int resolution = 0;  // packed images are resolution x resolution
  Encoding encoding = Encoding::kJpeg;
  std::vector<ShardInfo> shards;
  std::vector<LabelColumn> labels;
  SplitInfo split;
  std::string id_column;                  // the CSV column the ids came from ("" = file names)
  std::map<std::string, int64_t> sources;  // source name -> image count
  std::string preprocessing_json;          // parameters of the published preprocessing, as JSON
  std::string plan_sha256;                 // identity of the inputs and options (pack resume)
};

// manifest.json <-> Manifest. read_manifest names the file and field on any error.
Manifest read_manifest(const std::string& dataset_dir);
void write_manifest(const Manifest& manifest, const std::string& dataset_dir);  // temp, fsync, rename
bool is_dataset_dir(const std::string& path);  // a folder holding manifest.json

enum class Verify {
  kChecksums,  // sha256 of every shard against the manifest (the default: never train on a corrupt shard)
  kSizes,      // file sizes only (cheap; for ranks other than the one that verified checksums)
};

class Dataset {
 public:
  // Throws std::runtime_error naming the shard on a missing file, a size or sha256 mismatch,
  // or a layout that disagrees with the manifest.
  static std::shared_ptr<Dataset> open(const std::string& dir, Verify verify = Verify::kChecksums);
  ~Dataset();
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  int64_t size() const { return manifest_.count; }
  int resolution() const { return manifest_.resolution; }

  const std::vector<std::string>& ids() const { return ids_; }
  const std::vector<std::string>& sources() const { return sources_; }
  bool has_split() const { return !split_.empty(); }
  // Dataset indices of "train", "test" or "all", ascending. Without a split, "train" and
  // "all" are every sample and "test" is an error.
  std::vector<int64_t> split_indices(const std::string& split) const;
  // A seeded, patient-level subset of `indices` (ascending in, ascending out): the groups are
  // the values of the manifest's split-by column (an image without one, or every image of a
  // dataset packed without a split, is its own group); sorted, shuffled with a stream seeded
  // by `seed`, and the images of the first ceil(fraction x groups) are kept. A patient is
  // never split, fraction 1 is the identity, and for one seed a smaller fraction's subset is
  // inside a larger one's (so a data-size sweep grows the same data).
  std::vector<int64_t> patient_subset(const std::vector<int64_t>& indices, double fraction, uint64_t seed) const;

  const std::vector<LabelColumn>& label_columns() const { return manifest_.labels; }
  const LabelColumn& label_column(const std::string& task) const;  // throws naming the task
  // kInteger / kYesNo / kCategory columns: class per sample, -1 = missing (throws for kFloat).
  const std::vector<int64_t>& int_labels(const std::string& task) const;
  // Any column as double, missing = NaN.
  std::vector<double> float_labels(const std::string& task) const;

  // The stored bytes of sample i (JPEG/PNG bytes; raw: H*W*3 RGB bytes). Thread-safe.
  std::vector<uint8_t> read_encoded(int64_t i) const;
  // Sample i as 8-bit RGB, HWC, continuous. Thread-safe; decoding runs outside the HDF5 lock.
  cv::Mat decode(int64_t i) const;
  cv::Mat decode_bytes(const std::vector<uint8_t>& bytes) const;  // as decode(), from read_encoded's bytes

 private:
  struct Shard;
  Dataset() = default;
  const Shard& shard_of(int64_t i, int64_t* local) const;

  std::string dir_;
  Manifest manifest_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::string> ids_;
  std::vector<std::string> sources_;
  std::vector<uint8_t> split_;  // empty = no split
  std::map<std::string, std::vector<int64_t>> int_labels_;
  std::map<std::string, std::vector<double>> float_labels_;
  mutable std::mutex read_mutex_;  // libhdf5 is not re-entrant
};

// `greenfound inspect DATASET`: prints counts, resolution, encoding, label columns with their
// value counts, splits and shards, verifying every shard's sha256 (throws naming the first
// corrupt shard after printing what it checked).
void print_dataset_summary(const std::string& dir, std::ostream& out);

}  // namespace gf::data
