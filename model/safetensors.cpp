// The safetensors format: 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets} (offsets relative to the data section) plus an
// optional string map "__metadata__", then the raw little-endian tensor bytes.
//
// Files come from strangers, so the header is checked before any tensor is allocated: the
// header at most kMaxHeaderBytes and inside the file, shapes whose byte size does not overflow
// and equals the offset span, offsets that tile the data section exactly (no overlap, no gap,
// nothing past the end) as the reference implementation (the Rust safetensors crate) requires,
// and, stricter than it, no key twice in any JSON object. Names in errors are escaped (printable()).
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "model/printable.hpp"
#include "model/weights.hpp"

namespace gf::model {
namespace {

// The Rust safetensors crate's own limit (MAX_HEADER_SIZE): a header of 100,000 tensors is ~10 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

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
  throw std::runtime_error(where + ".dtype: found \"" + printable(name) + "\", expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
}

const char* dtype_name(at::ScalarType type, const std::string& where) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  throw std::runtime_error(where + ": dtype " + std::string(c10::toString(type)) + " has no safetensors name");
}

// The header as JSON, refusing a key repeated in any object: nlohmann and the Rust crate keep
// the last one silently, and which tensor the writer meant cannot be known.
nlohmann::json parse_header(const std::string& text, const std::string& path) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  auto refuse_repeats = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end) keys.pop_back();
    if (event == E::key && !keys.back().insert(parsed.get<std::string>()).second)
      throw std::runtime_error(path + ": header: key \"" + printable(parsed.get<std::string>()) +
                               "\" appears twice in one object, expected each key once");
    return true;
  };
  try {
    return nlohmann::json::parse(text, refuse_repeats);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": header is not valid JSON (" + printable(e.what()) + ")");
  }
}

struct Entry {
  std::string name;
  at::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// Non-negative integers of a header list (nlohmann would truncate 1.5 or wrap -1 silently).
std::vector<uint64_t> unsigned_list(const nlohmann::json& list, const std::string& where) {
  if (!list.is_array()) throw std::runtime_error(where + ": found " + std::string(list.type_name()) + ", expected a list of integers");
  std::vector<uint64_t> out;
  for (const auto& x : list) {
    if (!x.is_number_unsigned()) throw std::runtime_error(where + ": found " + printable(x.dump()) + ", expected integers >= 0");
    out.push_back(x.get<uint64_t>());
  }
  return out;
}

// One tensor's header entry, its byte size checked against its offsets.
Entry parse_entry(const std::string& name, const nlohmann::json& v, const std::string& where) {
  if (!v.is_object()) throw std::runtime_error(where + ": found " + std::string(v.type_name()) + ", expected {dtype, shape, data_offsets}");
  const auto field = [&](const char* key) -> const nlohmann::json& {
    if (!v.contains(key)) throw std::runtime_error(where + ": found no \"" + key + "\", expected {dtype, shape, data_offsets}");
    return v[key];
  };
  if (!field("dtype").is_string()) throw std::runtime_error(where + ".dtype: found " + printable(v["dtype"].dump()) + ", expected a string");
  const auto offsets = unsigned_list(field("data_offsets"), where + ".data_offsets");
  if (offsets.size() != 2) throw std::runtime_error(where + ".data_offsets: found " + std::to_string(offsets.size()) + " values, expected [begin, end]");
  Entry e{name, dtype_from_name(v["dtype"].get<std::string>(), where), {}, offsets[0], offsets[1]};
  uint64_t bytes = c10::elementSize(e.type);
  int64_t nonzero_product = 1;  // ATen refuses a shape whose element count overflows even when one size is 0
  for (uint64_t d : unsigned_list(field("shape"), where + ".shape")) {
    e.shape.push_back(static_cast<int64_t>(d));
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(bytes, d, &bytes) ||
        (d > 0 && __builtin_mul_overflow(nonzero_product, static_cast<int64_t>(d), &nonzero_product)))
      throw std::runtime_error(where + ".shape: found a shape whose byte size overflows 64 bits (dimension " + std::to_string(d) + ")");
  }
  if (e.end < e.begin || e.end - e.begin != bytes)
    throw std::runtime_error(where + ".data_offsets: found [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                             "], expected a span of " + std::to_string(bytes) + " bytes (shape " +
                             c10::str(at::IntArrayRef(e.shape)) + " of " + dtype_name(e.type, where) + ")");
  return e;
}

}  // namespace

SafetensorsContents read_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (!std::filesystem::exists(path, ec)) throw std::runtime_error(path + ": cannot open for reading");
    throw std::runtime_error(path + ": not a regular file, expected a .safetensors file");
  }
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
  if (header_len > kMaxHeaderBytes)
    throw std::runtime_error(path + ": header length: found " + std::to_string(header_len) + " bytes, expected at most " +
                             std::to_string(kMaxHeaderBytes) + " (the safetensors limit)");
  std::string header_text(header_len, '\0');
  if (!in.read(header_text.data(), static_cast<std::streamsize>(header_len)))
    throw std::runtime_error(path + ": could not read its " + std::to_string(header_len) + "-byte header");
  const nlohmann::json header = parse_header(header_text, path);
  if (!header.is_object()) throw std::runtime_error(path + ": header: found " + std::string(header.type_name()) + ", expected an object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  SafetensorsContents contents;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key().size() > kMaxTensorNameBytes)
      throw std::runtime_error(path + ": " + printable(it.key().substr(0, 40)) + "..: found a tensor name of " +
                               std::to_string(it.key().size()) + " bytes, expected at most " + std::to_string(kMaxTensorNameBytes));
    const std::string where = path + ": " + printable(it.key());
    try {
      if (it.key() == "__metadata__") {
        if (!it.value().is_object()) throw std::runtime_error(where + ": found " + std::string(it.value().type_name()) + ", expected an object of strings");
        for (auto m = it.value().begin(); m != it.value().end(); ++m) contents.metadata[m.key()] = m.value().get<std::string>();
        continue;
      }
      entries.push_back(parse_entry(it.key(), it.value(), where));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": malformed header entry (" + printable(e.what()) + ")");
    }
  }
  // File order = the writer's order (state-dict order for timm and greenfound files). The
  // spans must follow each other exactly, from 0 to the end of the file.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expected_begin = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const std::string found = path + ": " + printable(e.name) + ".data_offsets: found [" + std::to_string(e.begin) + ", " +
                              std::to_string(e.end) + "], expected ";
    if (e.begin != expected_begin)
      throw std::runtime_error(found + "it to start at " + std::to_string(expected_begin) +
                               (i == 0 ? "" : ", where \"" + printable(entries[i - 1].name) + "\" ends") +
                               (e.begin < expected_begin ? " (tensors overlap)" : " (a gap between tensors)"));
    if (e.end > data_size)
      throw std::runtime_error(found + "it inside the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
    expected_begin = e.end;
  }
  if (expected_begin != data_size)
    throw std::runtime_error(path + ": found a data section of " + std::to_string(data_size) + " bytes, expected " +
                             std::to_string(expected_begin) + " (where the last tensor ends)");
  for (const auto& e : entries) {
    auto tensor = at::empty(e.shape, at::TensorOptions().dtype(e.type));
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    if (!in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(e.end - e.begin)))
      throw std::runtime_error(path + ": " + printable(e.name) + ": could not read its " + std::to_string(e.end - e.begin) + " bytes");
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
