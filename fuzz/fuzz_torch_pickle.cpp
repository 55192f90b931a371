// libFuzzer target for the torch.save reader (model/torch_pickle.cpp). An input that starts
// like a zip archive is the whole .pth file (the archive and its records get the mutations);
// any other input is the pickle, stored as data.pkl next to four 64-byte storages data/0-3
// (16 floats each, as the seed pickles expect) so that the unpickler and the tensor checks
// get them. A std::exception is the right answer to a malformed file; a crash, a sanitizer
// report, an allocation past -malloc_limit_mb or a timeout is a finding.
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <exception>
#include <string>

#include "fuzz/scratch_file.hpp"
#include "model/weights.hpp"

namespace {

void write_archive(const std::string& path, const uint8_t* pickle, size_t size) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle, size);
  const std::string storage(64, '\0');
  for (const char* name : {"data/0", "data/1", "data/2", "data/3"}) writer.writeRecord(name, storage.data(), storage.size());
  writer.writeEndOfFile();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("input.pth");
  if (gf::model::has_torch_zip_magic(reinterpret_cast<const char*>(data), static_cast<int64_t>(size)))
    scratch.write(data, size);
  else
    write_archive(scratch.path(), data, size);
  try {
    gf::model::read_weights(scratch.path());
  } catch (const std::exception&) {
  }
  return 0;
}
