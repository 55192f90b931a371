#include "base/json_reader.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace gf::base {

using nlohmann::json;

json load_json_file(const std::string& path, JsonTop top) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  json value;
  try {
    value = json::parse(in);
  } catch (const json::exception& e) {  // a syntax error, or a number out of double's range (1e999)
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
  if (top == JsonTop::kObject && !value.is_object())
    throw std::runtime_error(path + ": found " + std::string(value.type_name()) + ", expected a JSON object");
  return value;
}

std::vector<json> load_json_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  std::vector<json> values;
  std::string line, torn;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    if (!torn.empty()) throw std::runtime_error(torn);  // a bad line with more after it
    json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded())
      torn = path + ": line " + std::to_string(number) + ": not valid JSON";
    else
      values.push_back(std::move(value));
  }
  return values;
}

Section::Section(const json& root, std::string path, std::string source)
    : path_(std::move(path)), source_(std::move(source)) {
  const json* node = &root;
  if (!path_.empty()) {
    const auto dot = path_.rfind('.');
    const std::string key = dot == std::string::npos ? path_ : path_.substr(dot + 1);
    if (!root.contains(key)) return;
    node = &root.at(key);
    if (!node->is_object()) throw_found_expected(source_, path_, node->dump(), "a JSON object");
  }
  node_ = node;
}

Section Section::of(const json& node, std::string path, std::string source) {
  Section section(node, "", std::move(source));
  section.path_ = std::move(path);
  if (node.is_null()) section.node_ = nullptr;
  else if (!node.is_object()) throw_found_expected(section.source_, section.path_, node.dump(), "a JSON object");
  return section;
}

Section Section::child(const char* key) {
  remember(key);
  if (node_ == nullptr) return Section(json::object(), name(key), source_);
  if (node_->contains(key)) consumed_.insert(key);
  return Section(*node_, name(key), source_);
}

std::vector<Section> Section::children(const char* key) {
  std::vector<Section> out;
  const json* v = find(key);
  if (v == nullptr) return out;
  if (!v->is_array()) fail(key, *v, "a list of JSON objects");
  for (size_t i = 0; i < v->size(); ++i) out.push_back(of((*v)[i], name(key) + "[" + std::to_string(i) + "]", source_));
  return out;
}

std::string Section::name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

void Section::fail(const std::string& key, const json& value, const std::string& expected) const {
  throw_found_expected(source_, name(key), value.dump(), expected);
}

void Section::remember(const char* key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
}

const json* Section::find(const char* key) {
  remember(key);
  if (node_ == nullptr || !node_->contains(key)) return nullptr;
  consumed_.insert(key);
  return &node_->at(key);
}

bool Section::take_null(const char* key) {
  remember(key);
  if (node_ == nullptr || !node_->contains(key) || !node_->at(key).is_null()) return false;
  consumed_.insert(key);
  return true;
}

bool Section::read_or_nan(const char* key, double& out) {
  if (take_null(key)) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  return read(key, out);
}

bool Section::read_or_nan(const char* key, std::vector<double>& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_array()) fail(key, *v, "a list of numbers");
  std::vector<double> items;
  for (const auto& item : *v) {
    if (!item.is_number() && !item.is_null()) fail(key, *v, "a list of numbers (null: not a number)");
    items.push_back(item.is_null() ? std::numeric_limits<double>::quiet_NaN() : item.get<double>());
  }
  out = std::move(items);
  return true;
}

bool Section::read(const char* key, std::string& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_string()) fail(key, *v, "a string");
  out = v->get<std::string>();
  return true;
}

bool Section::read(const char* key, bool& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) fail(key, *v, "true or false");
  out = v->get<bool>();
  return true;
}

bool Section::read(const char* key, double& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_number()) fail(key, *v, "a number");
  out = v->get<double>();
  return true;
}

bool Section::read(const char* key, int64_t& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX))
    fail(key, *v, "an integer");
  out = v->get<int64_t>();
  return true;
}

bool Section::read(const char* key, int& out) {
  int64_t wide = out;
  if (!read(key, wide)) return false;
  if (wide < INT32_MIN || wide > INT32_MAX) fail(key, node_->at(key), "an integer of at most 9 digits");
  out = static_cast<int>(wide);
  return true;
}

bool Section::read(const char* key, uint64_t& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_number_integer() || (!v->is_number_unsigned() && v->get<int64_t>() < 0))
    fail(key, *v, "a non-negative integer");
  out = v->get<uint64_t>();
  return true;
}

bool Section::read(const char* key, uint32_t& out) {
  uint64_t wide = out;
  if (!read(key, wide)) return false;
  if (wide > UINT32_MAX) fail(key, node_->at(key), "a non-negative integer below 2^32");
  out = static_cast<uint32_t>(wide);
  return true;
}

bool Section::read(const char* key, std::vector<std::string>& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_array()) fail(key, *v, "a list of strings");
  std::vector<std::string> items;
  for (const auto& item : *v) {
    if (!item.is_string()) fail(key, *v, "a list of strings");
    items.push_back(item.get<std::string>());
  }
  out = std::move(items);
  return true;
}

bool Section::read(const char* key, std::vector<int>& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_array()) fail(key, *v, "a list of integers");
  std::vector<int> items;
  for (const auto& item : *v) {
    if (!item.is_number_integer()) fail(key, *v, "a list of integers");
    items.push_back(item.get<int>());
  }
  out = std::move(items);
  return true;
}

bool Section::read(const char* key, json& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_object()) fail(key, *v, "a JSON object");
  out = *v;
  return true;
}

bool Section::read(const char* key, std::map<std::string, std::string>& out) {
  const json* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_object()) fail(key, *v, "an object of NAME: \"value\"");
  for (const auto& [name, item] : v->items()) {
    if (item.is_string())
      out[name] = item.get<std::string>();
    else if (item.is_number() || item.is_boolean())
      out[name] = item.dump();
    else
      fail(std::string(key) + "." + name, item, "a string or number");
  }
  return true;
}

void Section::skip(const char* key) {
  remember(key);
  consumed_.insert(key);
}

void Section::finish() const {
  if (node_ == nullptr) return;
  for (const auto& item : node_->items())
    if (consumed_.count(item.key()) == 0)
      throw FieldError(source_, name(item.key()), "unknown field (misspelt?), expected one of " + one_of(known_));
}

}  // namespace gf::base
