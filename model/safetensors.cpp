// The safetensors format: 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (offsets relative to the data section) plus an
// optional string map "__metadata__", then the raw little-endian tensor bytes.
#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "model/weights.hpp"

namespace gf::model {
namespace {

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
    {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},        {"BOOL", at::kBool},
};

at::ScalarType dtype_from_name(const std::string& name, const std::string& where) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw std::runtime_error(where + ".dtype: found \"" + name + "\", expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
}

const char* dtype_name(at::ScalarType type, const std::string& where) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  throw std::runtime_error(where + ": dtype " + std::string(c10::toString(type)) + " has no safetensors name");
}

// Writes all of `size` bytes or throws.
}  // namespace

SafetensorsContents read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char len_bytes[8] = {};
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(len_bytes), 8))
    throw std::runtime_error(path + ": found " + std::to_string(file_size) + " bytes, expected a safetensors file (8-byte header length first)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > file_size - 8)
    throw std::runtime_error(path + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                             std::to_string(file_size) + " (truncated or not safetensors)");
  std::string header_text(header_len, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw std::runtime_error(path + ": header: found " + std::string(header.type_name()) + ", expected an object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  SafetensorsContents contents;
  struct Entry {
    std::string name;
    at::ScalarType type;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string where = path + ": " + it.key();
    try {
      if (it.key() == "__metadata__") {
        for (auto m = it.value().begin(); m != it.value().end(); ++m) contents.metadata[m.key()] = m.value().get<std::string>();
        continue;
      }
      const auto& v = it.value();
      Entry e{it.key(), dtype_from_name(v.at("dtype").get<std::string>(), where), v.at("shape").get<std::vector<int64_t>>(),
              v.at("data_offsets").at(0).get<uint64_t>(), v.at("data_offsets").at(1).get<uint64_t>()};
      int64_t numel = 1;
      for (int64_t d : e.shape) {
        if (d < 0) throw std::runtime_error(where + ".shape: found a negative dimension");
        numel *= d;
      }
      const uint64_t expected = static_cast<uint64_t>(numel) * c10::elementSize(e.type);
      if (e.end < e.begin || e.end - e.begin != expected || e.end > data_size)
        throw std::runtime_error(where + ".data_offsets: found [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                 "], expected " + std::to_string(expected) + " bytes inside a data section of " +
                                 std::to_string(data_size) + " bytes");
      entries.push_back(std::move(e));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": malformed header entry (" + e.what() + ")");
    }
  }
  // File order = the writer's order (state-dict order for timm and greenfound files).
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (const auto& e : entries) {
    auto tensor = at::empty(e.shape, at::TensorOptions().dtype(e.type));
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    if (!in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(e.end - e.begin)))
      throw std::runtime_error(path + ": " + e.name + ": could not read its " + std::to_string(e.end - e.begin) + " bytes");
    contents.tensors.emplace_back(e.name, std::move(tensor));
  }
  return contents;
}

void write_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> blobs;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw std::runtime_error(path + ": tensor name \"" + name + "\" is reserved or repeated");
    auto blob = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = blob.numel() * blob.element_size();
    header[name] = {{"dtype", dtype_name(blob.scalar_type(), path + ": " + name)},
                    {"shape", blob.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(std::move(blob));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);

  base::AtomicFile file(path);
  file.write(len_bytes, 8);
  file.write(text);
  for (const auto& blob : blobs) file.write(blob.data_ptr(), blob.numel() * blob.element_size());
  file.commit();
}

}  // namespace gf::model
