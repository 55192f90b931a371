#pragma once
// Reading JSON the one way: files loaded with errors that name them, and objects read field
// by field into typed structs by a Section, which checks each value's type, remembers which
// keys it consumed and flags the rest (a misspelt "bach_size" is an error, not a silent
// default). Every error is a base::FieldError worded "source: field: found X, expected Y".
//
//   const nlohmann::json root = base::load_json_file(path);
//   base::Section data(root, "data", path);
//   data.read("batch_size", config.batch_size);
//   data.read("device", config.device, kDeviceNames);   // an enum by its names
//   data.finish();                                      // unknown keys
//   base::Checker check(path);
//   check.require(config.batch_size > 0, "data.batch_size", config.batch_size, "an integer > 0");
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/enum_names.hpp"
#include "base/error.hpp"

namespace gf::base {

// The contents of a JSON file. Errors name the file: cannot open, not valid JSON (with the
// parser's position), or (object_only) not a JSON object.
enum class JsonTop { kAny, kObject };
nlohmann::json load_json_file(const std::string& path, JsonTop top = JsonTop::kObject);

// The values of a JSON Lines file, one per non-empty line; a line that does not parse is an
// error naming the file and line, except a torn last line (a writer that died mid-line),
// which is dropped.
std::vector<nlohmann::json> load_json_lines(const std::string& path);

class Section {
 public:
  // The object at key `path` of `root` ("" = root itself; absent = nothing to read, every
  // read keeps its default). `source` (a file name) prefixes every error.
  Section(const nlohmann::json& root, std::string path, std::string source);
  // `node` itself, a JSON object (or null: nothing to read), named `path` in errors.
  static Section of(const nlohmann::json& node, std::string path, std::string source);
  // A Section points into the JSON it reads: a temporary would be gone before the first read.
  static Section of(nlohmann::json&& node, std::string path, std::string source) = delete;
  // The object at key `key` of this section (a nested section, named "path.key").
  Section child(const char* key);
  // The objects of the array at `key`, named "path.key[i]" (absent: none).
  std::vector<Section> children(const char* key);

  // Each reads `key` into `out` when present (returns whether it was), checking its type.
  bool read(const char* key, std::string& out);
  bool read(const char* key, bool& out);
  bool read(const char* key, double& out);
  bool read(const char* key, int64_t& out);
  bool read(const char* key, int& out);
  bool read(const char* key, uint32_t& out);
  bool read(const char* key, uint64_t& out);
  bool read(const char* key, std::vector<std::string>& out);
  bool read(const char* key, std::vector<int>& out);
  bool read(const char* key, nlohmann::json& out);  // any JSON object, kept as is
  // A number where null stands for "not a number" (JSON has no NaN).
  bool read_or_nan(const char* key, double& out);
  bool read_or_nan(const char* key, std::vector<double>& out);
  // NAME: "value" pairs; numbers and booleans are taken as their JSON text.
  bool read(const char* key, std::map<std::string, std::string>& out);
  // A field that may be absent or null: set when present, reset when null.
  template <class T>
  bool read(const char* key, std::optional<T>& out) {
    if (take_null(key)) {
      out.reset();
      return true;
    }
    T value{};
    if (!read(key, value)) return false;
    out = std::move(value);
    return true;
  }
  template <class E, size_t N>
  bool read(const char* key, std::optional<E>& out, const EnumName<E> (&names)[N]) {
    E value{};
    if (!read(key, value, names)) return false;
    out = value;
    return true;
  }
  template <class E, size_t N>
  bool read(const char* key, E& out, const EnumName<E> (&names)[N]) {
    std::string text;
    if (!read(key, text)) return false;
    out = parse_enum(text, names, source_, name(key));
    return true;
  }

  // Every key of the section must have been read: the first other one is an error listing
  // the keys this section reads.
  void finish() const;
  // Keys read elsewhere (sections of the root that other readers own).
  void skip(const char* key);

  bool present() const { return node_ != nullptr; }
  std::string name(const std::string& key) const;  // "path.key"
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& key, const nlohmann::json& value, const std::string& expected) const;

 private:
  const nlohmann::json* find(const char* key);
  bool take_null(const char* key);  // true (and consumed) when `key` is present and null
  void remember(const char* key);   // a key this section reads, for the list of known keys

  const nlohmann::json* node_ = nullptr;
  std::string path_, source_;
  std::set<std::string> consumed_;
  std::vector<std::string> known_;  // every key asked for, in order
};

// Checks of values already typed: one FieldError per bad field, the value shown as written.
class Checker {
 public:
  explicit Checker(std::string source) : source_(std::move(source)) {}
  void require(bool ok, const std::string& field, double value, const std::string& expected) const {
    if (!ok) throw_found_expected(source_, field, shown(value), expected);
  }
  void require(bool ok, const std::string& field, const std::string& value, const std::string& expected) const {
    if (!ok) throw_found_expected(source_, field, shown(value), expected);
  }

 private:
  std::string source_;
};

}  // namespace gf::base
