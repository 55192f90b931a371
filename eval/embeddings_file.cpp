#include "eval/embeddings_file.hpp"

#include <ATen/ATen.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "data/hdf5_checks.hpp"

namespace gf::eval {
namespace {

// `what`, with the system's reason where a system call failed under libhdf5 (a full disk).
std::runtime_error failure(const std::string& what) {
  const std::string reason = data::hdf5_system_error();
  return std::runtime_error(what + (reason.empty() ? "" : " (" + reason + ")"));
}

// An HDF5 identifier closed with the matching H5*close when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id < 0) throw failure(what);
  }
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void check(herr_t status, const std::string& what) {
  if (status < 0) throw failure(what);
}

// h5py's float16: IEEE binary16, little endian.
hid_t make_half_type() {
  const hid_t type = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(type, 15, 10, 5, 0, 10);
  H5Tset_size(type, 2);
  H5Tset_ebias(type, 15);
  H5Tset_precision(type, 16);
  return type;
}

hid_t make_string_type() {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  return type;
}

// Variable-length strings as HDF5 writes them: the C strings, their type and a 1-D space.
struct StringArray {
  StringArray(const std::vector<std::string>& values, const std::string& path)
      : dims{values.size()},
        type(make_string_type(), H5Tclose, path + ": cannot create a string type"),
        space(H5Screate_simple(1, dims, nullptr), H5Sclose, path + ": cannot create a dataspace") {
    for (const auto& value : values) pointers.push_back(value.c_str());
  }
  hsize_t dims[1];
  Handle type;
  Handle space;
  std::vector<const char*> pointers;
};

void write_strings(hid_t parent, const std::string& name, const std::vector<std::string>& values,
                   const std::string& path) {
  const StringArray strings(values, path);
  const hid_t& type = strings.type;
  const hid_t& space = strings.space;
  const auto& pointers = strings.pointers;
  Handle dataset(H5Dcreate2(parent, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose, path + ": cannot create dataset " + name);
  if (!values.empty())
    check(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()),
          path + ": cannot write dataset " + name);
}

void write_string_attribute(hid_t object, const std::string& name, const std::string& value,
                            const std::string& path) {
  Handle type(make_string_type(), H5Tclose, path + ": cannot create a string type");
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, path + ": cannot create a dataspace");
  Handle attribute(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   path + ": cannot create attribute " + name);
  const char* pointer = value.c_str();
  check(H5Awrite(attribute, type, &pointer), path + ": cannot write attribute " + name);
}

void write_string_list_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values,
                                 const std::string& path) {
  const StringArray strings(values, path);
  const hid_t& type = strings.type;
  const hid_t& space = strings.space;
  const auto& pointers = strings.pointers;
  Handle attribute(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   path + ": cannot create attribute " + name);
  if (!values.empty()) check(H5Awrite(attribute, type, pointers.data()), path + ": cannot write attribute " + name);
}

std::vector<std::string> read_string_list_attribute(hid_t object, const std::string& name, const std::string& path) {
  if (H5Aexists(object, name.c_str()) <= 0) return {};
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, path + ": cannot open attribute " + name);
  Handle space(H5Aget_space(attribute), H5Sclose, path + ": cannot read a dataspace");
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  Handle type(make_string_type(), H5Tclose, path + ": cannot create a string type");
  std::vector<char*> pointers(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  std::vector<std::string> values;
  if (n <= 0) return values;
  check(H5Aread(attribute, type, pointers.data()), path + ": cannot read attribute " + name);
  for (char* p : pointers) values.emplace_back(p ? p : "");
  H5Dvlen_reclaim(type, space, H5P_DEFAULT, pointers.data());
  return values;
}

void write_numeric(hid_t parent, const std::string& name, hid_t file_type, hid_t memory_type,
                   const void* data, std::vector<hsize_t> dims, const std::string& path) {
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
               path + ": cannot create a dataspace");
  Handle dataset(H5Dcreate2(parent, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose, path + ": cannot create dataset " + name);
  if (H5Sget_simple_extent_npoints(space) > 0)
    check(H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
          path + ": cannot write dataset " + name);
}

std::vector<hsize_t> dataset_dims(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose, "cannot read a dataspace");
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return dims;
}

// Variable- or fixed-length strings, as h5py writes either.
std::vector<std::string> read_strings(hid_t file, const std::string& name, const std::string& path) {
  Handle dataset(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, path + ": dataset " + name + " is missing");
  data::checked_element_count(dataset, 1, path, name);  // before sizing anything from its shape
  const auto dims = dataset_dims(dataset);
  Handle file_type(H5Dget_type(dataset), H5Tclose, path + ": " + name + ": cannot read its type");
  if (H5Tget_class(file_type) != H5T_STRING)
    throw std::runtime_error(path + ": " + name + ": found a non-string dataset, expected strings");
  std::vector<std::string> values(dims[0]);
  if (dims[0] == 0) return values;
  if (H5Tis_variable_str(file_type) > 0) {
    Handle type(make_string_type(), H5Tclose, path + ": cannot create a string type");
    std::vector<char*> pointers(dims[0]);
    check(H5Dread(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), path + ": cannot read " + name);
    for (size_t i = 0; i < values.size(); ++i) values[i] = pointers[i] ? pointers[i] : "";
    Handle space(H5Dget_space(dataset), H5Sclose, path + ": cannot read a dataspace");
    H5Dvlen_reclaim(type, space, H5P_DEFAULT, pointers.data());
  } else {
    const size_t width = H5Tget_size(file_type);
    std::vector<char> buffer(width * dims[0]);
    check(H5Dread(dataset, file_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), path + ": cannot read " + name);
    for (size_t i = 0; i < values.size(); ++i) {
      const char* start = buffer.data() + i * width;
      values[i].assign(start, strnlen(start, width));
    }
  }
  return values;
}

std::string read_string_attribute(hid_t file, const std::string& name, const std::string& path) {
  if (H5Aexists(file, name.c_str()) <= 0) return "";
  Handle attribute(H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose, path + ": cannot open attribute " + name);
  Handle file_type(H5Aget_type(attribute), H5Tclose, path + ": " + name + ": cannot read its type");
  if (H5Tget_class(file_type) != H5T_STRING)
    throw std::runtime_error(path + ": attribute " + name + ": expected a string");
  if (H5Tis_variable_str(file_type) > 0) {
    Handle type(make_string_type(), H5Tclose, path + ": cannot create a string type");
    char* pointer = nullptr;
    check(H5Aread(attribute, type, &pointer), path + ": cannot read attribute " + name);
    std::string value = pointer ? pointer : "";
    H5free_memory(pointer);
    return value;
  }
  std::vector<char> buffer(H5Tget_size(file_type) + 1, '\0');
  check(H5Aread(attribute, file_type, buffer.data()), path + ": cannot read attribute " + name);
  return std::string(buffer.data());
}

void write_file(const std::string& path, const EmbeddingTable& table, EmbeddingDtype dtype) {
  const hsize_t n = static_cast<hsize_t>(table.rows());
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
              path + ": cannot create the file");
  const std::vector<hsize_t> dims = {n, static_cast<hsize_t>(table.dim)};
  if (dtype == EmbeddingDtype::kFloat16) {
    const at::Tensor half = at::from_blob(const_cast<float*>(table.values.data()),
                                          {static_cast<int64_t>(table.values.size())}, at::kFloat)
                                .to(at::kHalf);
    Handle half_type(make_half_type(), H5Tclose, path + ": cannot create a float16 type");
    write_numeric(file, "embeddings", half_type, half_type, half.data_ptr(), dims, path);
  } else {
    write_numeric(file, "embeddings", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, table.values.data(), dims, path);
  }
  write_strings(file, "ids", table.ids, path);
  if (!table.split.empty()) write_strings(file, "split", table.split, path);
  Handle labels(H5Gcreate2(file, "labels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                path + ": cannot create group labels");
  for (const auto& [name, column] : table.labels) {
    if (column.integer) {
      std::vector<int64_t> values(column.values.size());
      for (size_t i = 0; i < values.size(); ++i)
        values[i] = std::isnan(column.values[i]) ? -1 : static_cast<int64_t>(column.values[i]);
      write_numeric(labels, name, H5T_STD_I64LE, H5T_NATIVE_INT64, values.data(), {values.size()}, path);
    } else {
      write_numeric(labels, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, column.values.data(),
                    {column.values.size()}, path);
    }
    if (!column.type.empty() || !column.categories.empty()) {
      Handle dataset(H5Dopen2(labels, name.c_str(), H5P_DEFAULT), H5Dclose, path + ": cannot open labels/" + name);
      if (!column.type.empty()) write_string_attribute(dataset, "type", column.type, path);
      if (!column.categories.empty()) write_string_list_attribute(dataset, "categories", column.categories, path);
    }
  }
  write_string_attribute(file, "arch", table.arch, path);
  write_string_attribute(file, "pool", table.pool, path);
  write_string_attribute(file, "weights_sha256", table.weights_sha256, path);
  if (!table.split_by.empty()) write_string_attribute(file, "split_by", table.split_by, path);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, path + ": cannot create a dataspace");
  Handle attribute(H5Acreate2(file, "img_size", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                   path + ": cannot create attribute img_size");
  check(H5Awrite(attribute, H5T_NATIVE_INT64, &table.img_size), path + ": cannot write attribute img_size");
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), path + ": flush failed");
}

}  // namespace

EmbeddingDtype parse_embedding_dtype(const std::string& name) {
  if (name == "float32") return EmbeddingDtype::kFloat32;
  if (name == "float16") return EmbeddingDtype::kFloat16;
  base::throw_found_expected("embed", "dtype", base::shown(name), "float32 or float16");
}

void write_embeddings(const std::string& path, const EmbeddingTable& table, EmbeddingDtype dtype) {
  const size_t n = table.ids.size();
  if (table.values.size() != n * static_cast<size_t>(table.dim))
    throw std::runtime_error(path + ": embeddings: found " + std::to_string(table.values.size()) +
                             " values, expected rows x dim = " + std::to_string(n * table.dim));
  if (!table.split.empty() && table.split.size() != n)
    throw std::runtime_error(path + ": split: found " + std::to_string(table.split.size()) +
                             " entries, expected " + std::to_string(n));
  for (const auto& [name, column] : table.labels)
    if (column.values.size() != n)
      throw std::runtime_error(path + ": labels/" + name + ": found " + std::to_string(column.values.size()) +
                               " entries, expected " + std::to_string(n));
  data::silence_hdf5_errors();  // every failure below throws naming the file
  const std::string temporary = path + ".tmp";
  try {
    write_file(temporary, table, dtype);
    base::fsync_path(temporary);
    base::rename_durable(temporary, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);  // never left half-written under its temporary name
    throw;
  }
}

EmbeddingTable read_embeddings(const std::string& path) {
  data::silence_hdf5_errors();  // every failure below throws naming the file and dataset
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + ": no such embeddings file");
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw std::runtime_error(path + ": not an HDF5 file (truncated or not an embeddings file)");
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
              path + ": cannot open as HDF5 (truncated or not an embeddings file)");
  EmbeddingTable table;
  table.ids = read_strings(file, "ids", path);
  const int64_t n = table.rows();

  Handle dataset(H5Dopen2(file, "embeddings", H5P_DEFAULT), H5Dclose, path + ": dataset embeddings is missing");
  data::checked_element_count(dataset, 2, path, "embeddings");  // shape against the stored bytes, before allocating
  const auto dims = dataset_dims(dataset);
  if (dims.size() != 2 || static_cast<int64_t>(dims[0]) != n)
    throw std::runtime_error(path + ": embeddings: expected shape [" + std::to_string(n) + ", D] to match ids");
  table.dim = static_cast<int64_t>(dims[1]);
  table.values.resize(static_cast<size_t>(n * table.dim));
  Handle file_type(H5Dget_type(dataset), H5Tclose, path + ": embeddings: cannot read its type");
  if (H5Tget_class(file_type) != H5T_FLOAT)
    throw std::runtime_error(path + ": embeddings: found a non-float dataset, expected float32 or float16");
  if (!table.values.empty()) {
    if (H5Tget_size(file_type) == 2) {
      at::Tensor half = at::empty({static_cast<int64_t>(table.values.size())}, at::kHalf);
      Handle half_type(make_half_type(), H5Tclose, path + ": cannot create a float16 type");
      check(H5Dread(dataset, half_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, half.data_ptr()),
            path + ": cannot read embeddings");
      const at::Tensor widened = half.to(at::kFloat);
      std::memcpy(table.values.data(), widened.data_ptr<float>(), table.values.size() * sizeof(float));
    } else {
      check(H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, table.values.data()),
            path + ": cannot read embeddings");
    }
  }

  if (H5Lexists(file, "split", H5P_DEFAULT) > 0) {
    table.split = read_strings(file, "split", path);
    if (static_cast<int64_t>(table.split.size()) != n)
      throw std::runtime_error(path + ": split: found " + std::to_string(table.split.size()) +
                               " entries, expected " + std::to_string(n));
  }
  if (H5Lexists(file, "labels", H5P_DEFAULT) > 0) {
    Handle group(H5Gopen2(file, "labels", H5P_DEFAULT), H5Gclose, path + ": cannot open group labels");
    H5G_info_t info;
    check(H5Gget_info(group, &info), path + ": cannot list labels");
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t size = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      std::string name(static_cast<size_t>(size), '\0');
      H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
      Handle column(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose, path + ": cannot open labels/" + name);
      data::checked_element_count(column, 1, path, "labels/" + name);
      const auto column_dims = dataset_dims(column);
      if (column_dims.size() != 1 || static_cast<int64_t>(column_dims[0]) != n)
        throw std::runtime_error(path + ": labels/" + name + ": expected shape [" + std::to_string(n) + "]");
      Handle type(H5Dget_type(column), H5Tclose, path + ": labels/" + name + ": cannot read its type");
      LabelColumn label;
      label.integer = H5Tget_class(type) == H5T_INTEGER;
      if (!label.integer && H5Tget_class(type) != H5T_FLOAT)
        throw std::runtime_error(path + ": labels/" + name + ": found a non-numeric dataset, expected numbers");
      label.values.resize(static_cast<size_t>(n));
      if (n > 0)
        check(H5Dread(column, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, label.values.data()),
              path + ": cannot read labels/" + name);
      if (label.integer)
        for (double& v : label.values)
          if (v == -1) v = std::numeric_limits<double>::quiet_NaN();
      label.type = read_string_attribute(column, "type", path);
      label.categories = read_string_list_attribute(column, "categories", path);
      table.labels.emplace(name, std::move(label));
    }
  }
  table.arch = read_string_attribute(file, "arch", path);
  table.pool = read_string_attribute(file, "pool", path);
  table.weights_sha256 = read_string_attribute(file, "weights_sha256", path);
  table.split_by = read_string_attribute(file, "split_by", path);
  if (H5Aexists(file, "img_size") > 0) {
    Handle attribute(H5Aopen(file, "img_size", H5P_DEFAULT), H5Aclose, path + ": cannot open attribute img_size");
    check(H5Aread(attribute, H5T_NATIVE_INT64, &table.img_size), path + ": cannot read attribute img_size");
  }
  return table;
}

}  // namespace gf::eval
