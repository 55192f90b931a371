#pragma once
// One HDF5 shard file (layout in data/dataset.hpp) through the HDF5 C API: a writer that
// streams images into extendible datasets and writes the per-sample metadata at close, and
// a reader for the layout we write and the same layout written by h5py (vlen or
// fixed-length strings, chunked or contiguous datasets).
// Not thread-safe by itself: libhdf5 serialises calls; callers hold one lock per process.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace gf::data {

// An hid_t closed on destruction.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Hid& operator=(Hid&& other) noexcept;
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  void reset();

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

struct ShardLayout {
  int resolution = 0;
  Encoding encoding = Encoding::kJpeg;
  int64_t first_index = 0;
  std::string preprocessing_json;
  std::vector<LabelColumn> labels;
  bool has_split = false;
};

class ShardWriter {
 public:
  // Creates (truncating) `path`.
  ShardWriter(const std::string& path, ShardLayout layout);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // label_values: one per layout.labels column (integer columns hold integral values, -1
  // missing; float columns NaN missing). split: 0 train, 1 test (ignored without a split).
  void append(const std::string& id, const std::string& source, std::vector<uint8_t> encoded, int split,
              const std::vector<double>& label_values);
  int64_t count() const { return count_; }
  // Writes ids/sources/split/labels and attributes, closes the file and fsyncs it.
  void close();

 private:
  void flush_images();

  std::string path_;
  ShardLayout layout_;
  Hid file_, images_;
  int64_t count_ = 0;
  int64_t written_ = 0;
  std::vector<std::vector<uint8_t>> pending_;
  std::vector<std::string> ids_, sources_;
  std::vector<uint8_t> split_;
  std::vector<std::vector<double>> labels_;  // [column][sample]
};

class ShardReader {
 public:
  explicit ShardReader(const std::string& path);
  const std::string& path() const { return path_; }
  int64_t count() const { return count_; }
  bool raw() const { return raw_; }
  int raw_height() const { return raw_h_; }
  int raw_width() const { return raw_w_; }

  bool has(const std::string& name) const;
  std::vector<std::string> read_strings(const std::string& name) const;
  std::vector<int64_t> read_int64(const std::string& name) const;
  std::vector<double> read_double(const std::string& name) const;
  std::vector<uint8_t> read_uint8(const std::string& name) const;
  // Element i of `images`: the encoded bytes, or H*W*3 raw RGB bytes.
  std::vector<uint8_t> read_image(int64_t i) const;
  // The "type" and "categories" attributes of labels/<name> (an empty name when the writer
  // left them out), to check against the manifest's schema.
  LabelColumn read_label_schema(const std::string& name) const;

 private:
  Hid open_dataset(const std::string& name) const;
  void read_numeric(const std::string& name, hid_t mem_type, void* out) const;

  std::string path_;
  Hid file_, images_, image_space_;
  Hid vlen_type_;
  int64_t count_ = 0;
  bool raw_ = false;
  int raw_h_ = 0, raw_w_ = 0;
};

}  // namespace gf::data
