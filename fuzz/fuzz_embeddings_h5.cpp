// libFuzzer target for the embeddings reader (eval/embeddings_file.cpp) that `probe` uses. The
// input describes a file that the target writes with libhdf5: which of ids, embeddings, split
// and labels/<c> exist, each one's type (variable or fixed strings, float16/32/64, integers),
// dataspace (null, scalar, rank 1-3, a dimension of 2^40 never written), values, and the
// attributes (arch, pool, weights_sha256, split_by, img_size, a label's type and categories)
// with any type and shape: the reader's own checks get the mutations (libhdf5 has no coverage
// instrumentation to guide raw bytes there). Raw HDF5 bytes are not fuzzed here: the first
// such run stopped within seconds on libhdf5 1.10 allocating and zeroing the length a forged
// variable-length string declares (4 GB from a 10 KB file) before anything reaches our code.
// A std::exception is the right answer to a malformed file; a crash, a sanitizer report, an
// allocation past -malloc_limit_mb or a timeout is a finding.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "eval/embeddings_file.hpp"
#include "fuzz/scratch_file.hpp"

namespace {

constexpr hsize_t kNeverWritten = hsize_t{1} << 40;
constexpr hsize_t kMaxWrittenElements = 4096;

hid_t make_type(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: {
      const hid_t type = H5Tcopy(H5T_C_S1);
      H5Tset_size(type, H5T_VARIABLE);
      H5Tset_cset(type, H5T_CSET_UTF8);
      return type;
    }
    case 1: {
      const hid_t type = H5Tcopy(H5T_C_S1);
      H5Tset_size(type, in.ConsumeIntegralInRange<size_t>(1, 24));
      return type;
    }
    case 2: {  // h5py's float16
      const hid_t type = H5Tcopy(H5T_IEEE_F32LE);
      H5Tset_fields(type, 15, 10, 5, 0, 10);
      H5Tset_size(type, 2);
      H5Tset_ebias(type, 15);
      H5Tset_precision(type, 16);
      return type;
    }
    case 3: return H5Tcopy(H5T_IEEE_F32LE);
    case 4: return H5Tcopy(H5T_IEEE_F64BE);
    case 5: return H5Tcopy(H5T_STD_I64LE);
    case 6: return H5Tcopy(H5T_STD_U8LE);
    default: return H5Tcopy(H5T_STD_I32BE);
  }
}

// A dataspace, and whether it declares 2^40 elements (then nothing is written).
hid_t make_space(FuzzedDataProvider& in, bool& never_written) {
  never_written = false;
  const int rank = in.ConsumeIntegralInRange(-1, 3);
  if (rank == -1) return H5Screate(H5S_NULL);
  if (rank == 0) return H5Screate(H5S_SCALAR);
  hsize_t dims[3];
  for (int d = 0; d < rank; ++d) dims[d] = in.ConsumeIntegralInRange<hsize_t>(0, 12);
  if (in.ConsumeProbability<float>() < 0.1f) {
    dims[0] = kNeverWritten;
    never_written = true;
  }
  const hsize_t unlimited[3] = {H5S_UNLIMITED, H5S_UNLIMITED, H5S_UNLIMITED};
  return H5Screate_simple(rank, dims, unlimited);
}

// `count` elements of `type` from the input: pointers to strings for variable strings (kept
// alive in `strings`), else raw bytes (any bit pattern: NaN, Inf, no terminating NUL).
std::vector<uint8_t> make_values(FuzzedDataProvider& in, hid_t type, hsize_t count, std::vector<std::string>& strings) {
  if (H5Tis_variable_str(type) > 0) {
    strings.resize(count);
    std::vector<uint8_t> pointers(count * sizeof(const char*));
    for (hsize_t i = 0; i < count; ++i) {
      strings[i] = in.ConsumeRandomLengthString(32);
      const char* p = strings[i].c_str();
      std::memcpy(pointers.data() + i * sizeof p, &p, sizeof p);
    }
    return pointers;
  }
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(count * H5Tget_size(type));
  bytes.resize(count * H5Tget_size(type));
  return bytes;
}

// A dataset `name` under `parent`, chunked (every dimension may grow), written unless it
// declares 2^40 elements or the input says to leave it unwritten.
void add_dataset(FuzzedDataProvider& in, hid_t parent, const char* name) {
  const hid_t type = make_type(in);
  bool never_written = false;
  const hid_t space = make_space(in, never_written);
  const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank > 0) {
    const hsize_t chunk[3] = {4, 4, 4};
    H5Pset_chunk(plist, rank, chunk);
  }
  const hid_t dataset = H5Dcreate2(parent, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  if (dataset >= 0 && !never_written && count > 0 && static_cast<hsize_t>(count) <= kMaxWrittenElements &&
      in.ConsumeProbability<float>() < 0.9f) {
    std::vector<std::string> strings;
    const std::vector<uint8_t> values = make_values(in, type, static_cast<hsize_t>(count), strings);
    H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  }
  if (dataset >= 0) H5Dclose(dataset);
  H5Pclose(plist);
  H5Sclose(space);
  H5Tclose(type);
}

// An attribute `name` on `object` when the input says so, of any type and shape.
void maybe_add_attribute(FuzzedDataProvider& in, hid_t object, const char* name) {
  if (!in.ConsumeBool()) return;
  const hid_t type = make_type(in);
  bool never_written = false;
  const hid_t space = make_space(in, never_written);
  hid_t attribute = -1;
  if (!never_written) attribute = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const hssize_t count = H5Sget_simple_extent_npoints(space);
  if (attribute >= 0 && count > 0 && static_cast<hsize_t>(count) <= kMaxWrittenElements) {
    std::vector<std::string> strings;
    const std::vector<uint8_t> values = make_values(in, type, static_cast<hsize_t>(count), strings);
    H5Awrite(attribute, type, values.data());
  }
  if (attribute >= 0) H5Aclose(attribute);
  H5Sclose(space);
  H5Tclose(type);
}

void write_described_file(FuzzedDataProvider& in, const std::string& path) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return;
  for (const char* name : {"ids", "embeddings", "split"})
    if (in.ConsumeProbability<float>() < 0.9f) add_dataset(in, file, name);
  if (in.ConsumeBool()) {
    if (in.ConsumeProbability<float>() < 0.1f) {
      add_dataset(in, file, "labels");  // a dataset where the group should be
    } else {
      const hid_t group = H5Gcreate2(file, "labels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      for (const char* name : {"grade", "site", "score"}) {
        if (!in.ConsumeBool()) continue;
        if (in.ConsumeProbability<float>() < 0.05f) {
          H5Gclose(H5Gcreate2(group, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));  // a group, not a column
          continue;
        }
        add_dataset(in, group, name);
        const hid_t column = H5Dopen2(group, name, H5P_DEFAULT);
        if (column < 0) continue;
        maybe_add_attribute(in, column, "type");
        maybe_add_attribute(in, column, "categories");
        H5Dclose(column);
      }
      H5Gclose(group);
    }
  }
  for (const char* name : {"arch", "pool", "weights_sha256", "split_by", "img_size"}) maybe_add_attribute(in, file, name);
  H5Fclose(file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("embeddings.h5");
  static const bool silenced = H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0;  // the builder's failures are expected
  (void)silenced;
  FuzzedDataProvider in(data, size);
  write_described_file(in, scratch.path());
  try {
    gf::eval::read_embeddings(scratch.path());
  } catch (const std::exception&) {
  }
  return 0;
}
