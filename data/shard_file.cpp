#include "data/shard_file.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "base/atomic_file.hpp"
#include "data/hdf5_checks.hpp"

namespace gf::data {
namespace {

constexpr hsize_t kVlenChunk = 256;    // hvl_t pointers per chunk of `images` (the bytes live in the heap)
constexpr size_t kImagesPerFlush = 32;  // images buffered before extending `images`
constexpr hsize_t kMaxRawSide = 1 << 16;  // raw [N,H,W,3] images: H and W past this are forged

std::runtime_error h5_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

// "<path>: <what> failed", with the system's reason where a system call failed (a full disk).
std::runtime_error failed(const std::string& path, const std::string& what) {
  const std::string reason = hdf5_system_error();
  return h5_error(path, what + " failed" + (reason.empty() ? "" : " (" + reason + ")"));
}

Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& path, const std::string& what) {
  if (id < 0) throw failed(path, what);
  return Hid(id, close);
}

void check(herr_t rc, const std::string& path, const std::string& what) {
  if (rc < 0) throw failed(path, what);
}

// Creation properties without object timestamps, so packing the same inputs twice gives
// byte-identical shards (and identical sha256s in the manifest).
Hid creation_plist(hid_t cls) {
  Hid plist(H5Pcreate(cls), H5Pclose);
  H5Pset_obj_track_times(plist.get(), false);
  return plist;
}

Hid utf8_string_type() {
  Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value, const std::string& path) {
  Hid type = utf8_string_type();
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attribute = checked(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, path,
                          std::string("creating attribute ") + name);
  const char* data = value.c_str();
  check(H5Awrite(attribute.get(), type.get(), &data), path, std::string("writing attribute ") + name);
}

void write_int_attribute(hid_t object, const char* name, int64_t value, const std::string& path) {
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attribute = checked(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                          path, std::string("creating attribute ") + name);
  check(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), path, std::string("writing attribute ") + name);
}

void write_string_list_attribute(hid_t object, const char* name, const std::vector<std::string>& values,
                                 const std::string& path) {
  Hid type = utf8_string_type();
  const hsize_t n = values.size();
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Hid attribute = checked(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, path,
                          std::string("creating attribute ") + name);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (n > 0) check(H5Awrite(attribute.get(), type.get(), pointers.data()), path, std::string("writing attribute ") + name);
}

void write_strings(hid_t parent, const char* name, const std::vector<std::string>& values, const std::string& path) {
  Hid type = utf8_string_type();
  const hsize_t n = values.size();
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Hid dcpl = creation_plist(H5P_DATASET_CREATE);
  Hid dataset = checked(H5Dcreate2(parent, name, type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                        H5Dclose, path, std::string("creating dataset ") + name);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  if (n > 0) check(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), path,
                   std::string("writing dataset ") + name);
}

void write_numeric(hid_t parent, const char* name, hid_t file_type, hid_t mem_type, const void* data, hsize_t n,
                   const std::string& path) {
  Hid space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Hid dcpl = creation_plist(H5P_DATASET_CREATE);
  Hid dataset = checked(H5Dcreate2(parent, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                        H5Dclose, path, std::string("creating dataset ") + name);
  if (n > 0) check(H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
                   std::string("writing dataset ") + name);
}

// A string or string-list attribute (vlen or fixed-length) as a list; empty when absent. Its
// declared size is checked against its stored size first (attributes come from the file).
std::vector<std::string> read_string_attribute(hid_t object, const char* name, const std::string& path,
                                               const std::string& owner) {
  const std::string where = owner + ": attribute " + name;
  if (H5Aexists(object, name) <= 0) return {};
  Hid attribute = checked(H5Aopen(object, name, H5P_DEFAULT), H5Aclose, path, "opening " + where);
  Hid type(H5Aget_type(attribute.get()), H5Tclose);
  Hid space(H5Aget_space(attribute.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_STRING) throw h5_error(path, where + ": found a non-string type, expected strings");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  const size_t width = H5Tget_size(type.get());
  if (n < 0 || width == 0 || static_cast<uint64_t>(n) > H5Aget_storage_size(attribute.get()) / width) {
    throw h5_error(path, where + ": found " + std::to_string(n) + " elements in " +
                             std::to_string(H5Aget_storage_size(attribute.get())) + " stored bytes, expected a real attribute");
  }
  std::vector<std::string> out;
  if (n == 0) return out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem_type = utf8_string_type();
    std::vector<char*> pointers(static_cast<size_t>(n), nullptr);
    check(H5Aread(attribute.get(), mem_type.get(), pointers.data()), path, "reading " + where);
    for (char* p : pointers) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, pointers.data());
  } else {
    std::vector<char> buffer(width * static_cast<size_t>(n));
    check(H5Aread(attribute.get(), type.get(), buffer.data()), path, "reading " + where);
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buffer.data() + static_cast<size_t>(i) * width;
      out.emplace_back(p, strnlen(p, width));
    }
  }
  return out;
}

}  // namespace

Hid& Hid::operator=(Hid&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = -1;
  }
  return *this;
}

void Hid::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

// ---------------------------------------------------------------- writer

ShardWriter::ShardWriter(const std::string& path, ShardLayout layout) : path_(path), layout_(std::move(layout)) {
  silence_hdf5_errors();  // every failure below throws naming the file
  file_ = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose, path, "creating the file");
  Hid plist = creation_plist(H5P_DATASET_CREATE);
  if (layout_.encoding == Encoding::kRaw) {
    const hsize_t r = static_cast<hsize_t>(layout_.resolution);
    const hsize_t dims[4] = {0, r, r, 3}, max_dims[4] = {H5S_UNLIMITED, r, r, 3}, chunk[4] = {1, r, r, 3};
    Hid space(H5Screate_simple(4, dims, max_dims), H5Sclose);
    H5Pset_chunk(plist.get(), 4, chunk);
    images_ = checked(H5Dcreate2(file_.get(), "images", H5T_STD_U8LE, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT),
                      H5Dclose, path, "creating dataset images");
  } else {
    const hsize_t dims[1] = {0}, max_dims[1] = {H5S_UNLIMITED}, chunk[1] = {kVlenChunk};
    Hid space(H5Screate_simple(1, dims, max_dims), H5Sclose);
    H5Pset_chunk(plist.get(), 1, chunk);
    Hid type(H5Tvlen_create(H5T_STD_U8LE), H5Tclose);
    images_ = checked(H5Dcreate2(file_.get(), "images", type.get(), space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT),
                      H5Dclose, path, "creating dataset images");
  }
  labels_.resize(layout_.labels.size());
}

ShardWriter::~ShardWriter() = default;  // an unclosed writer leaves a temporary file the caller discards

void ShardWriter::append(const std::string& id, const std::string& source, std::vector<uint8_t> encoded,
                         int split, const std::vector<double>& label_values) {
  if (label_values.size() != layout_.labels.size()) {
    throw std::runtime_error(path_ + ": append: found " + std::to_string(label_values.size()) + " label values, expected " +
                             std::to_string(layout_.labels.size()));
  }
  const size_t raw_bytes = static_cast<size_t>(layout_.resolution) * layout_.resolution * 3;
  if (layout_.encoding == Encoding::kRaw && encoded.size() != raw_bytes) {
    throw std::runtime_error(path_ + ": append: found " + std::to_string(encoded.size()) + " raw bytes, expected " +
                             std::to_string(raw_bytes));
  }
  pending_.push_back(std::move(encoded));
  ids_.push_back(id);
  sources_.push_back(source);
  split_.push_back(static_cast<uint8_t>(split > 0 ? 1 : 0));
  for (size_t c = 0; c < label_values.size(); ++c) labels_[c].push_back(label_values[c]);
  ++count_;
  if (pending_.size() >= kImagesPerFlush) flush_images();
}

void ShardWriter::flush_images() {
  if (pending_.empty()) return;
  const hsize_t n = pending_.size();
  const hsize_t start = static_cast<hsize_t>(written_);
  if (layout_.encoding == Encoding::kRaw) {
    const hsize_t r = static_cast<hsize_t>(layout_.resolution);
    const hsize_t new_dims[4] = {start + n, r, r, 3};
    check(H5Dset_extent(images_.get(), new_dims), path_, "extending images");
    Hid file_space(H5Dget_space(images_.get()), H5Sclose);
    const hsize_t offset[4] = {start, 0, 0, 0}, count[4] = {1, r, r, 3};
    Hid mem_space(H5Screate_simple(4, count, nullptr), H5Sclose);
    for (hsize_t i = 0; i < n; ++i) {
      const hsize_t at[4] = {offset[0] + i, 0, 0, 0};
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, at, nullptr, count, nullptr);
      check(H5Dwrite(images_.get(), H5T_NATIVE_UINT8, mem_space.get(), file_space.get(), H5P_DEFAULT, pending_[i].data()),
            path_, "writing images");
    }
  } else {
    const hsize_t new_dims[1] = {start + n};
    check(H5Dset_extent(images_.get(), new_dims), path_, "extending images");
    Hid file_space(H5Dget_space(images_.get()), H5Sclose);
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &n, nullptr);
    Hid mem_space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Hid mem_type(H5Tvlen_create(H5T_NATIVE_UINT8), H5Tclose);
    std::vector<hvl_t> vl(n);
    for (hsize_t i = 0; i < n; ++i) {
      vl[i].len = pending_[i].size();
      vl[i].p = pending_[i].data();
    }
    check(H5Dwrite(images_.get(), mem_type.get(), mem_space.get(), file_space.get(), H5P_DEFAULT, vl.data()), path_,
          "writing images");
  }
  written_ += static_cast<int64_t>(n);
  pending_.clear();
}

void ShardWriter::close() {
  flush_images();
  const hid_t root = file_.get();
  const hsize_t n = static_cast<hsize_t>(count_);
  write_strings(root, "ids", ids_, path_);
  write_strings(root, "sources", sources_, path_);
  if (layout_.has_split) write_numeric(root, "split", H5T_STD_U8LE, H5T_NATIVE_UINT8, split_.data(), n, path_);
  if (!layout_.labels.empty()) {
    Hid gcpl = creation_plist(H5P_GROUP_CREATE);
    Hid group = checked(H5Gcreate2(root, "labels", H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose, path_,
                        "creating group labels");
    for (size_t c = 0; c < layout_.labels.size(); ++c) {
      const LabelColumn& column = layout_.labels[c];
      if (column.type == LabelType::kFloat) {
        write_numeric(group.get(), column.name.c_str(), H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, labels_[c].data(), n, path_);
      } else {
        std::vector<int64_t> ints(labels_[c].size());
        for (size_t i = 0; i < ints.size(); ++i) ints[i] = std::isnan(labels_[c][i]) ? -1 : static_cast<int64_t>(labels_[c][i]);
        write_numeric(group.get(), column.name.c_str(), H5T_STD_I64LE, H5T_NATIVE_INT64, ints.data(), n, path_);
      }
      Hid dataset = checked(H5Dopen2(group.get(), column.name.c_str(), H5P_DEFAULT), H5Dclose, path_,
                            "opening labels/" + column.name);
      write_string_attribute(dataset.get(), "type", to_string(column.type), path_);
      if (column.type == LabelType::kCategory) write_string_list_attribute(dataset.get(), "categories", column.categories, path_);
    }
  }
  write_int_attribute(root, "format_version", kFormatVersion, path_);
  write_int_attribute(root, "resolution", layout_.resolution, path_);
  write_int_attribute(root, "first_index", layout_.first_index, path_);
  write_int_attribute(root, "count", count_, path_);
  write_string_attribute(root, "encoding", to_string(layout_.encoding), path_);
  write_string_attribute(root, "preprocessing", layout_.preprocessing_json, path_);
  images_.reset();
  check(H5Fflush(root, H5F_SCOPE_GLOBAL), path_, "flushing the file");
  file_.reset();
  base::fsync_path(path_);
}

// ---------------------------------------------------------------- reader

ShardReader::ShardReader(const std::string& path) : path_(path) {
  silence_hdf5_errors();  // every failure below throws naming the file
  hid_t file = -1;
  H5E_BEGIN_TRY { file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT); }
  H5E_END_TRY;
  file_ = checked(file, H5Fclose, path, "opening as HDF5 (not an HDF5 file, or truncated)");
  images_ = open_dataset("images");
  image_space_ = Hid(H5Dget_space(images_.get()), H5Sclose);
  Hid type(H5Dget_type(images_.get()), H5Tclose);
  const int rank = H5Sget_simple_extent_ndims(image_space_.get());
  hsize_t dims[4] = {0, 0, 0, 0};
  if (rank < 1 || rank > 4) throw h5_error(path, "images: found rank " + std::to_string(rank) + ", expected 1 (vlen) or 4 (raw)");
  checked_element_count(images_.get(), rank, path, "images");  // the declared count is what the file holds
  H5Sget_simple_extent_dims(image_space_.get(), dims, nullptr);
  count_ = static_cast<int64_t>(dims[0]);
  if (H5Tget_class(type.get()) == H5T_VLEN) {
    if (rank != 1) throw h5_error(path, "images: found a vlen dataset of rank " + std::to_string(rank) + ", expected rank 1");
    vlen_type_ = Hid(H5Tvlen_create(H5T_NATIVE_UINT8), H5Tclose);
  } else if (H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1 && rank == 4 && dims[3] == 3 &&
             dims[1] <= kMaxRawSide && dims[2] <= kMaxRawSide) {
    raw_ = true;
    raw_h_ = static_cast<int>(dims[1]);
    raw_w_ = static_cast<int>(dims[2]);
  } else {
    throw h5_error(path, "images: found an unsupported type/shape, expected vlen uint8 [N] or uint8 [N,H,W,3]");
  }
}

bool ShardReader::has(const std::string& name) const {
  htri_t exists = 0;
  H5E_BEGIN_TRY { exists = H5Lexists(file_.get(), name.c_str(), H5P_DEFAULT); }
  H5E_END_TRY;
  if (exists <= 0) return false;
  H5E_BEGIN_TRY { exists = H5Oexists_by_name(file_.get(), name.c_str(), H5P_DEFAULT); }
  H5E_END_TRY;
  return exists > 0;
}

Hid ShardReader::open_dataset(const std::string& name) const {
  if (name.find('/') != std::string::npos && !has(name.substr(0, name.rfind('/')))) {
    throw h5_error(path_, "found no group " + name.substr(0, name.rfind('/')) + ", expected one");
  }
  if (!has(name)) throw h5_error(path_, "found no dataset " + name + ", expected one");
  return checked(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose, path_, "opening dataset " + name);
}

std::vector<std::string> ShardReader::read_strings(const std::string& name) const {
  Hid dataset = open_dataset(name);
  Hid type(H5Dget_type(dataset.get()), H5Tclose);
  Hid space(H5Dget_space(dataset.get()), H5Sclose);
  const int64_t n = checked_element_count(dataset.get(), 1, path_, name);
  if (n != count_) {
    throw h5_error(path_, name + ": found " + std::to_string(n) + " elements, expected " + std::to_string(count_) +
                              " (one per image)");
  }
  if (H5Tget_class(type.get()) != H5T_STRING) throw h5_error(path_, name + ": found a non-string type, expected strings");
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n));
  if (n == 0) return out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem_type = utf8_string_type();
    H5Tset_cset(mem_type.get(), H5Tget_cset(type.get()));
    std::vector<char*> pointers(static_cast<size_t>(n), nullptr);
    check(H5Dread(dataset.get(), mem_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), path_, "reading " + name);
    for (char* p : pointers) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, pointers.data());
  } else {
    const size_t width = H5Tget_size(type.get());
    Hid mem_type(H5Tcopy(type.get()), H5Tclose);
    std::vector<char> buffer(width * static_cast<size_t>(n));
    check(H5Dread(dataset.get(), mem_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), path_, "reading " + name);
    for (int64_t i = 0; i < n; ++i) {
      const char* p = buffer.data() + static_cast<size_t>(i) * width;
      out.emplace_back(p, strnlen(p, width));  // fixed-length strings are NUL-padded
    }
  }
  return out;
}

void ShardReader::read_numeric(const std::string& name, hid_t mem_type, void* out) const {
  Hid dataset = open_dataset(name);
  const int64_t n = checked_element_count(dataset.get(), 1, path_, name);
  if (n != count_) {
    throw h5_error(path_, name + ": found " + std::to_string(n) + " elements, expected " + std::to_string(count_) +
                              " (one per image)");
  }
  if (n > 0) check(H5Dread(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), path_, "reading " + name);
}

std::vector<int64_t> ShardReader::read_int64(const std::string& name) const {
  std::vector<int64_t> out(static_cast<size_t>(count_));
  read_numeric(name, H5T_NATIVE_INT64, out.data());
  return out;
}

std::vector<double> ShardReader::read_double(const std::string& name) const {
  std::vector<double> out(static_cast<size_t>(count_));
  read_numeric(name, H5T_NATIVE_DOUBLE, out.data());
  return out;
}

std::vector<uint8_t> ShardReader::read_uint8(const std::string& name) const {
  std::vector<uint8_t> out(static_cast<size_t>(count_));
  read_numeric(name, H5T_NATIVE_UINT8, out.data());
  return out;
}

LabelColumn ShardReader::read_label_schema(const std::string& name) const {
  const std::string dataset_name = "labels/" + name;
  Hid dataset = open_dataset(dataset_name);
  LabelColumn column;
  const std::vector<std::string> type = read_string_attribute(dataset.get(), "type", path_, dataset_name);
  if (type.empty()) return column;
  column.name = name;
  if (type.size() != 1) throw h5_error(path_, dataset_name + ": attribute type: found " + std::to_string(type.size()) + " strings, expected one");
  try {
    column.type = parse_label_type(type[0]);
  } catch (const std::exception& e) {
    throw h5_error(path_, dataset_name + ": attribute " + e.what());
  }
  column.categories = read_string_attribute(dataset.get(), "categories", path_, dataset_name);
  return column;
}

std::vector<uint8_t> ShardReader::read_image(int64_t i) const {
  silence_hdf5_errors();  // loader threads read too; a failure below throws naming the file
  if (i < 0 || i >= count_) {
    throw h5_error(path_, "images: found index " + std::to_string(i) + ", expected < " + std::to_string(count_));
  }
  Hid file_space(H5Scopy(image_space_.get()), H5Sclose);
  if (raw_) {
    const hsize_t offset[4] = {static_cast<hsize_t>(i), 0, 0, 0};
    const hsize_t count[4] = {1, static_cast<hsize_t>(raw_h_), static_cast<hsize_t>(raw_w_), 3};
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset, nullptr, count, nullptr);
    Hid mem_space(H5Screate_simple(4, count, nullptr), H5Sclose);
    std::vector<uint8_t> bytes(static_cast<size_t>(raw_h_) * raw_w_ * 3);
    check(H5Dread(images_.get(), H5T_NATIVE_UINT8, mem_space.get(), file_space.get(), H5P_DEFAULT, bytes.data()), path_,
          "reading images[" + std::to_string(i) + "]");
    return bytes;
  }
  const hsize_t offset = static_cast<hsize_t>(i), one = 1;
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &offset, nullptr, &one, nullptr);
  Hid mem_space(H5Screate_simple(1, &one, nullptr), H5Sclose);
  hvl_t vl{0, nullptr};
  check(H5Dread(images_.get(), vlen_type_.get(), mem_space.get(), file_space.get(), H5P_DEFAULT, &vl), path_,
        "reading images[" + std::to_string(i) + "]");
  std::vector<uint8_t> bytes(static_cast<const uint8_t*>(vl.p), static_cast<const uint8_t*>(vl.p) + vl.len);
  H5Dvlen_reclaim(vlen_type_.get(), mem_space.get(), H5P_DEFAULT, &vl);
  return bytes;
}

}  // namespace gf::data
