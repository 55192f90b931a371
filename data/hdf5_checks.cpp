#include "data/hdf5_checks.hpp"

#include <limits>
#include <stdexcept>
#include <vector>

namespace gf::data {
namespace {

// deflate cannot expand its input more than ~1032:1, so a filtered dataset cannot hold more
// than this many times its stored bytes (other filters in practice compress less).
constexpr uint64_t kMaxExpansion = 1032;

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text = "[";
  for (size_t d = 0; d < dims.size(); ++d) text += (d ? ", " : "") + std::to_string(dims[d]);
  return text + "]";
}

// H5Ewalk2 callback: the text between "error message = '" and the next quote, the
// strerror() that libhdf5's file drivers put in their failure descriptions.
herr_t find_system_error(unsigned, const H5E_error2_t* error, void* reason) {
  static const std::string kMarker = "error message = '";
  const std::string description = error->desc ? error->desc : "";
  const size_t at = description.find(kMarker);
  if (at == std::string::npos) return 0;
  const size_t begin = at + kMarker.size();
  *static_cast<std::string*>(reason) = description.substr(begin, description.find('\'', begin) - begin);
  return 1;  // found: stop walking
}

}  // namespace

void silence_hdf5_errors() {
  static const bool no_exit_handler = H5dont_atexit() >= 0;  // before anything initialises libhdf5
  (void)no_exit_handler;
  thread_local bool silenced = false;
  if (silenced) return;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

std::string hdf5_system_error() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, find_system_error, &reason);
  return reason;
}

int64_t checked_element_count(hid_t dataset, int expected_rank, const std::string& path, const std::string& name) {
  const std::string where = path + ": " + name + ": ";
  const hid_t space = H5Dget_space(dataset);
  if (space < 0) throw std::runtime_error(where + "found no readable dataspace, expected one");
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(rank > 0 ? rank : 0));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  H5Sclose(space);
  if (rank < 0) throw std::runtime_error(where + "found no readable dataspace, expected one");
  if (expected_rank >= 0 && rank != expected_rank) {
    throw std::runtime_error(where + "found shape " + shape_text(dims) + " (rank " + std::to_string(rank) +
                             "), expected rank " + std::to_string(expected_rank));
  }
  const hid_t type = H5Dget_type(dataset);
  const uint64_t element_bytes = type >= 0 ? H5Tget_size(type) : 0;
  if (type >= 0) H5Tclose(type);
  if (element_bytes == 0) throw std::runtime_error(where + "found no readable element type, expected one");
  // Overflow-checked: elements and bytes must fit int64 before anything is sized from them.
  uint64_t elements = 1, bytes = 0;
  for (hsize_t d : dims) {
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(d), &elements)) elements = UINT64_MAX;
  }
  if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
      __builtin_mul_overflow(elements, element_bytes, &bytes) || bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw std::runtime_error(where + "found shape " + shape_text(dims) + " whose byte size overflows, expected a real dataset");
  }
  if (elements == 0) return 0;
  const uint64_t stored = H5Dget_storage_size(dataset);
  const hid_t plist = H5Dget_create_plist(dataset);
  const int filters = plist >= 0 ? H5Pget_nfilters(plist) : 0;
  if (plist >= 0) H5Pclose(plist);
  const uint64_t ceiling = filters > 0 ? (stored > UINT64_MAX / kMaxExpansion ? UINT64_MAX : stored * kMaxExpansion) : stored;
  if (bytes > ceiling) {
    throw std::runtime_error(where + "found shape " + shape_text(dims) + " declaring " + std::to_string(bytes) +
                             " bytes in " + std::to_string(stored) + " stored bytes, expected " +
                             (filters > 0 ? "at most 1032x the stored bytes (compressed)" : "at most the stored bytes") +
                             " (a dataset never written, or a forged shape)");
  }
  return static_cast<int64_t>(elements);
}

}  // namespace gf::data
