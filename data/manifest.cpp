// manifest.json: the dataset's table of contents, written last by pack (and by anyone who
// lays a dataset out the same way, e.g. the h5py helper in tests/data).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "data/dataset.hpp"

namespace gf::data {
namespace {

using nlohmann::json;

const char* const kManifestFile = "manifest.json";

template <typename T>
T field(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key)) throw std::runtime_error(where + "." + key + ": found nothing, expected a value");
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
  Manifest m;
  m.format_version = field<int>(j, "format_version", where);
  if (m.format_version != kFormatVersion) {
    throw std::runtime_error(where + ".format_version: found " + std::to_string(m.format_version) + ", expected " +
                             std::to_string(kFormatVersion));
  }
  m.count = field<int64_t>(j, "count", where);
  m.resolution = field<int>(j, "resolution", where);
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
  }
  m.sources = optional_field<std::map<std::string, int64_t>>(j, "sources", where, {});
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
  base::write_file_atomic((std::filesystem::path(dataset_dir) / kManifestFile).string(), j.dump(2) + "\n");
}

}  // namespace gf::data
