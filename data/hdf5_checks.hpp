#pragma once
// HDF5 files from outside (shards, embeddings) are untrusted: a 16 KB file can declare a
// dataset of 2^40 elements that was never written. These checks run before anything is
// allocated for a dataset, and keep libhdf5 from printing its own error stack where our
// error already names the file and the dataset.
#include <hdf5.h>

#include <cstdint>
#include <string>

namespace gf::data {

// Turns off libhdf5's automatic error-stack printing (the 20-line HDF5-DIAG dumps) for the
// calling thread: libhdf5 keeps the setting per thread in thread-safe builds. Idempotent.
// The first call in a process also turns off libhdf5's exit handler, which closes the files
// still open and crashes on one whose flush already failed (a full disk): every file has an
// owner that closes it.
void silence_hdf5_errors();

// The operating system's reason for the HDF5 call that just failed ("No space left on
// device"), as libhdf5's file driver recorded it on the error stack; "" when the failure was
// not a system call's. Call it right after the failing call (the next call clears the stack).
std::string hdf5_system_error();

// The element count of `dataset` (rank `expected_rank`, or any rank for -1), after checking
// that its declared byte size (elements x element size) neither overflows nor exceeds what
// the file stores for it (H5Dget_storage_size; for a filtered dataset, what deflate's
// ~1032:1 ceiling lets that storage expand to). Throws "<path>: <name>: found ..., expected
// ..." otherwise.
int64_t checked_element_count(hid_t dataset, int expected_rank, const std::string& path, const std::string& name);

}  // namespace gf::data
