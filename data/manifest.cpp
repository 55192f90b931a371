// manifest.json: the dataset's table of contents, written last by pack (and by anyone who
// lays a dataset out the same way, e.g. the h5py helper in tests/data).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "base/sha256.hpp"
#include "data/dataset.hpp"

namespace gf::data {
namespace {

using nlohmann::json;

const char* const kManifestFile = "manifest.json";
// The manifest's own checksum: sha256 of the compact dump of every other field (nlohmann's
// objects keep keys sorted, so the dump is canonical: Python's json.dumps(sort_keys=True,
// separators=(",", ":"), ensure_ascii=False) gives the same bytes, as tests/data/h5py_*.py check).
const char* const kChecksumField = "manifest_sha256";
constexpr int kMaxResolution = 1 << 16;

std::string canonical_sha256(json j) {
  j.erase(kChecksumField);
  return base::sha256_hex(j.dump());
}

// A shard's file must name a file inside the dataset folder.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find_first_of("/\\") == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// An integer of type T as written: nlohmann's get<T>() would cast a float or an out-of-range
// value unchecked (1.8e88 into int64_t is undefined; the fuzzer found it in shards[].bytes).
template <typename T>
T integer(const json& value, const std::string& where) {
  bool fits = false;
  if (value.is_number_unsigned()) {
    fits = value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  } else if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    fits = std::is_signed_v<T> ? v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                     v <= static_cast<int64_t>(std::numeric_limits<T>::max())
                               : v >= 0;
  }
  if (!fits)
    throw std::runtime_error(where + ": found " + value.dump() + ", expected an integer from " +
                             std::to_string(std::numeric_limits<T>::min()) + " to " + std::to_string(std::numeric_limits<T>::max()));
  return value.get<T>();
}

template <typename T>
T field(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key)) throw std::runtime_error(where + "." + key + ": found nothing, expected a value");
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) return integer<T>(object.at(key), where + "." + key);
  try {
    return object.at(key).get<T>();
  } catch (const json::exception& e) {
    throw std::runtime_error(where + "." + key + ": found " + object.at(key).dump() + ", expected another type (" + e.what() + ")");
  }
}

template <typename T>
T optional_field(const json& object, const char* key, const std::string& where, T fallback) {
  return object.contains(key) && !object.at(key).is_null() ? field<T>(object, key, where) : fallback;
}

}  // namespace

std::string to_string(Encoding encoding) {
  switch (encoding) {
    case Encoding::kJpeg: return "jpeg";
    case Encoding::kPng: return "png";
    case Encoding::kRaw: return "raw";
  }
  return "?";
}

Encoding parse_encoding(const std::string& name) {
  if (name == "jpeg" || name == "jpg") return Encoding::kJpeg;
  if (name == "png") return Encoding::kPng;
  if (name == "raw") return Encoding::kRaw;
  throw std::runtime_error("encoding: found '" + name + "', expected jpeg, png or raw");
}

std::string to_string(LabelType type) {
  switch (type) {
    case LabelType::kInteger: return "int";
    case LabelType::kYesNo: return "yesno";
    case LabelType::kCategory: return "category";
    case LabelType::kFloat: return "float";
  }
  return "?";
}

LabelType parse_label_type(const std::string& name) {
  if (name == "int") return LabelType::kInteger;
  if (name == "yesno") return LabelType::kYesNo;
  if (name == "category") return LabelType::kCategory;
  if (name == "float") return LabelType::kFloat;
  throw std::runtime_error("label type: found '" + name + "', expected int, yesno, category or float");
}

std::string label_name_problem(const std::string& name) {
  if (name.empty()) return "an empty name";
  if (name == "." || name == "..") return "'" + name + "'";
  if (name.find('/') != std::string::npos) return "'" + name + "' (holding '/', which HDF5 reads as a group)";
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "a name with a control character";
  return "";
}

bool is_dataset_dir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) && std::filesystem::is_regular_file(std::filesystem::path(path) / kManifestFile, ec);
}

Manifest read_manifest(const std::string& dataset_dir) {
  const std::string path = (std::filesystem::path(dataset_dir) / kManifestFile).string();
  if (!std::filesystem::exists(path))
    throw std::runtime_error(path + ": cannot be opened, expected a packed dataset folder with a manifest.json");
  const json j = base::load_json_file(path);
  const std::string where = path;
  if (j.contains(kChecksumField)) {
    const std::string stated = field<std::string>(j, kChecksumField, where), actual = canonical_sha256(j);
    if (stated != actual) {
      throw std::runtime_error(where + "." + kChecksumField + ": found " + stated.substr(0, 12) + ".., expected " +
                               actual.substr(0, 12) + ".. (the sha256 of its content: manifest.json was edited or corrupted; re-run greenfound pack)");
    }
  } else {
    // Packs before the checksum wrote none: still readable, and every count and label schema
    // is checked against the shards when the dataset is opened. Warned once per file.
    static std::mutex mutex;
    static std::set<std::string> warned;
    std::lock_guard<std::mutex> lock(mutex);
    if (warned.insert(where).second) {
      std::cerr << "warning: " << where << ": found no " << kChecksumField
                << " (written by an older pack), expected one; its content is checked against the shards only\n";
    }
  }
  Manifest m;
  m.format_version = field<int>(j, "format_version", where);
  if (m.format_version != kFormatVersion) {
    throw std::runtime_error(where + ".format_version: found " + std::to_string(m.format_version) + ", expected " +
                             std::to_string(kFormatVersion));
  }
  m.count = field<int64_t>(j, "count", where);
  if (m.count < 0) throw std::runtime_error(where + ".count: found " + std::to_string(m.count) + ", expected >= 0");
  m.resolution = field<int>(j, "resolution", where);
  if (m.resolution < 1 || m.resolution > kMaxResolution) {
    throw std::runtime_error(where + ".resolution: found " + std::to_string(m.resolution) + ", expected 1.." +
                             std::to_string(kMaxResolution));
  }
  m.encoding = parse_encoding(field<std::string>(j, "encoding", where));
  m.id_column = optional_field<std::string>(j, "id_column", where, "");
  m.plan_sha256 = optional_field<std::string>(j, "plan_sha256", where, "");
  m.preprocessing_json = j.contains("preprocessing") ? j.at("preprocessing").dump() : "{}";
  int64_t expected_first = 0;
  const json shards = field<json>(j, "shards", where);
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string w = where + ".shards[" + std::to_string(s) + "]";
    ShardInfo info;
    info.file = field<std::string>(shards[s], "file", w);
    info.count = field<int64_t>(shards[s], "count", w);
    info.first_index = optional_field<int64_t>(shards[s], "first_index", w, expected_first);
    info.bytes = optional_field<int64_t>(shards[s], "bytes", w, -1);
    info.sha256 = field<std::string>(shards[s], "sha256", w);
    if (!is_plain_file_name(info.file))
      throw std::runtime_error(w + ".file: found '" + info.file + "', expected a file name inside the dataset folder");
    if (info.count < 0 || info.count > std::numeric_limits<int64_t>::max() - expected_first) {
      throw std::runtime_error(w + ".count: found " + std::to_string(info.count) + ", expected 0.." +
                               std::to_string(std::numeric_limits<int64_t>::max() - expected_first));
    }
    if (info.first_index != expected_first) {
      throw std::runtime_error(w + ".first_index: found " + std::to_string(info.first_index) + ", expected " +
                               std::to_string(expected_first));
    }
    expected_first += info.count;
    m.shards.push_back(info);
  }
  if (expected_first != m.count) {
    throw std::runtime_error(where + ".count: found " + std::to_string(m.count) + ", expected " +
                             std::to_string(expected_first) + " (the sum of the shard counts)");
  }
  const json labels = optional_field<json>(j, "labels", where, json::array());
  for (size_t c = 0; c < labels.size(); ++c) {
    const std::string w = where + ".labels[" + std::to_string(c) + "]";
    LabelColumn column;
    column.name = field<std::string>(labels[c], "name", w);
    const std::string problem = label_name_problem(column.name);
    if (!problem.empty()) throw std::runtime_error(w + ".name: found " + problem + ", expected a label column name");
    for (const auto& other : m.labels)
      if (other.name == column.name) throw std::runtime_error(w + ".name: found '" + column.name + "' again, expected unique names");
    column.type = parse_label_type(field<std::string>(labels[c], "type", w));
    column.categories = optional_field<std::vector<std::string>>(labels[c], "categories", w, {});
    m.labels.push_back(column);
  }
  const json split = optional_field<json>(j, "split", where, json());
  if (!split.is_null()) {
    const std::string w = where + ".split";
    m.split.by = field<std::string>(split, "by", w);
    m.split.test_fraction = field<double>(split, "test_fraction", w);
    m.split.seed = field<uint64_t>(split, "seed", w);
    m.split.train_count = field<int64_t>(split, "train", w);
    m.split.test_count = field<int64_t>(split, "test", w);
    if (m.split.train_count < 0 || m.split.test_count < 0 || m.split.train_count != m.count - m.split.test_count) {
      throw std::runtime_error(w + ": found train " + std::to_string(m.split.train_count) + ", test " +
                               std::to_string(m.split.test_count) + ", expected counts >= 0 adding up to " + std::to_string(m.count));
    }
  }
  const json sources = optional_field<json>(j, "sources", where, json::object());
  if (!sources.is_object()) throw std::runtime_error(where + ".sources: found " + sources.dump() + ", expected an object of counts");
  for (const auto& [name, count] : sources.items()) m.sources[name] = integer<int64_t>(count, where + ".sources." + name);
  return m;
}

void write_manifest(const Manifest& m, const std::string& dataset_dir) {
  json j;
  j["format"] = "greenfound-dataset";
  j["format_version"] = m.format_version;
  j["count"] = m.count;
  j["resolution"] = m.resolution;
  j["encoding"] = to_string(m.encoding);
  j["id_column"] = m.id_column;
  j["plan_sha256"] = m.plan_sha256;
  j["preprocessing"] = m.preprocessing_json.empty() ? json::object() : json::parse(m.preprocessing_json);
  j["shards"] = json::array();
  for (const auto& s : m.shards) {
    j["shards"].push_back({{"file", s.file}, {"count", s.count}, {"first_index", s.first_index}, {"bytes", s.bytes},
                           {"sha256", s.sha256}});
  }
  j["labels"] = json::array();
  for (const auto& c : m.labels) {
    json column = {{"name", c.name}, {"type", to_string(c.type)}};
    if (c.type == LabelType::kCategory) column["categories"] = c.categories;
    j["labels"].push_back(column);
  }
  if (m.split.by.empty()) {
    j["split"] = nullptr;
  } else {
    j["split"] = {{"by", m.split.by}, {"test_fraction", m.split.test_fraction}, {"seed", m.split.seed},
                  {"train", m.split.train_count}, {"test", m.split.test_count}};
  }
  j["sources"] = m.sources;
  j[kChecksumField] = canonical_sha256(j);
  base::write_file_atomic((std::filesystem::path(dataset_dir) / kManifestFile).string(), j.dump(2) + "\n");
}

}  // namespace gf::data
