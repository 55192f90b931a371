#include "data/labels_csv.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "base/error.hpp"
#include "data/augment.hpp"

namespace gf::data {
namespace {

// Each label column becomes an HDF5 dataset in every shard: real label files have tens of
// columns, and a million of them is a minute-long pack and a 420 MB shard of empty datasets.
constexpr size_t kMaxColumns = 4096;
// One CSV record (a row, quoted newlines included): far above any real row, and it bounds
// the memory a single malformed quote or forged line can take before it is refused.
constexpr size_t kMaxRecordBytes = size_t{1} << 20;
// Labels are float64 from here on (shards, probes); integers beyond 2^53 would round.
constexpr int64_t kMaxExactInteger = int64_t{1} << 53;

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_missing(const std::string& cell) {
  static const std::set<std::string> kMissing = {"", "na", "n/a", "nan", "null", "none"};
  return kMissing.count(lower(cell)) > 0;
}

bool parse_int(const std::string& s, int64_t* out) {
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data() + (!s.empty() && s[0] == '+'), end, *out);
  return ec == std::errc() && ptr == end;
}

bool parse_double(const std::string& s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(*out);
}

// True for an integer literal ([+-]digits) that a double cannot hold exactly.
bool is_inexact_integer(const std::string& s) {
  const size_t digits = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (s.size() == digits || !std::all_of(s.begin() + static_cast<std::ptrdiff_t>(digits), s.end(),
                                         [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  int64_t v = 0;
  return !parse_int(s, &v) || v > kMaxExactInteger || v < -kMaxExactInteger;
}

int yes_no(const std::string& s) {  // 1, 0, or -1 when not a yes/no word
  const std::string v = lower(s);
  if (v == "yes" || v == "y" || v == "true") return 1;
  if (v == "no" || v == "n" || v == "false") return 0;
  return -1;
}

// Splits CSV text into records of fields (RFC 4180); `lines` gets each record's first line.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, std::vector<int>* lines, const std::string& path) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, field_started = false;
  int line = 1, record_line = 1;
  size_t i = (text.rfind("\xEF\xBB\xBF", 0) == 0) ? 3 : 0;
  size_t record_start = i;
  auto end_record = [&] {
    record.push_back(field);
    field.clear();
    const bool blank = record.size() == 1 && trim(record[0]).empty();
    if (!blank) {
      records.push_back(record);
      lines->push_back(record_line);
    }
    record.clear();
    field_started = false;
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (i - record_start > kMaxRecordBytes) {
      throw std::runtime_error(path + ":" + std::to_string(record_line) + ": found a row longer than " +
                               std::to_string(kMaxRecordBytes) + " bytes, expected shorter rows (or a missing closing quote)");
    }
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      record.push_back(field);
      field.clear();
      field_started = false;
      if (record.size() >= kMaxColumns) {
        throw std::runtime_error(path + ":" + std::to_string(record_line) + ": found more than " + std::to_string(kMaxColumns) +
                                 " columns, expected at most " + std::to_string(kMaxColumns));
      }
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      record_line = ++line;
      record_start = i + 1;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) throw std::runtime_error(path + ":" + std::to_string(record_line) + ": found an unterminated quoted field, expected a closing quote");
  if (!field.empty() || !record.empty()) end_record();
  return records;
}

LabelColumn type_column(const std::string& name, const std::vector<std::string>& cells) {
  LabelColumn column;
  column.name = name;
  bool all_int = true, all_yes_no = true, all_number = true, any = false;
  for (const auto& cell : cells) {
    if (is_missing(cell)) continue;
    any = true;
    int64_t i = 0;
    double d = 0;
    all_int = all_int && parse_int(cell, &i);
    all_yes_no = all_yes_no && yes_no(cell) >= 0;
    all_number = all_number && parse_double(cell, &d);
  }
  if (!any || all_int) {
    column.type = LabelType::kInteger;
  } else if (all_yes_no) {
    column.type = LabelType::kYesNo;
  } else if (all_number) {
    column.type = LabelType::kFloat;
  } else {
    column.type = LabelType::kCategory;
    std::set<std::string> unique;
    for (const auto& cell : cells) {
      if (!is_missing(cell)) unique.insert(cell);
    }
    column.categories.assign(unique.begin(), unique.end());
  }
  return column;
}

double typed_value(const LabelColumn& column, const std::string& cell) {
  const double missing = column.type == LabelType::kFloat ? std::numeric_limits<double>::quiet_NaN() : -1.0;
  if (is_missing(cell)) return missing;
  switch (column.type) {
    case LabelType::kInteger: {
      int64_t v = 0;
      parse_int(cell, &v);
      return static_cast<double>(v);
    }
    case LabelType::kYesNo: return yes_no(cell);
    case LabelType::kFloat: {
      double v = 0;
      parse_double(cell, &v);
      return v;
    }
    case LabelType::kCategory: {
      const auto it = std::lower_bound(column.categories.begin(), column.categories.end(), cell);
      return static_cast<double>(it - column.categories.begin());
    }
  }
  return missing;
}

// Every column name becomes an HDF5 dataset name (labels/<name>) or names the ids: refused
// here, before any file is written, rather than by libhdf5 halfway through a shard.
void check_header(const std::vector<std::string>& header, const std::string& path) {
  std::set<std::string> seen;
  for (size_t c = 0; c < header.size(); ++c) {
    const std::string where = path + ":1: column " + std::to_string(c + 1);
    const std::string problem = label_name_problem(header[c]);
    if (!problem.empty()) throw std::runtime_error(where + ": found " + problem + ", expected a column name");
    if (!seen.insert(header[c]).second)
      throw std::runtime_error(where + ": found '" + header[c] + "' again, expected unique column names");
  }
}

}  // namespace

bool is_image_extension(const std::string& ext) {
  const std::string e = lower(ext);
  return e == ".jpg" || e == ".jpeg" || e == ".png";
}

std::string normalise_image_id(const std::string& value) {
  std::string id = trim(value);
  const size_t dot = id.rfind('.');
  if (dot != std::string::npos) {
    if (is_image_extension(id.substr(dot))) id = id.substr(0, dot);
  }
  return id;
}

LabelTable read_label_table(const std::string& path, const std::string& id_column, std::vector<PackProblem>* problems) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be opened, expected a labels CSV");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<int> lines;
  const auto records = parse_csv(text, &lines, path);
  if (records.empty()) throw std::runtime_error(path + ": found an empty file, expected a header row and one row per image");

  LabelTable table;
  table.path = path;
  table.id_column = id_column;
  for (const auto& h : records[0]) table.header.push_back(trim(h));
  check_header(table.header, path);
  const auto id_it = std::find(table.header.begin(), table.header.end(), id_column);
  if (id_it == table.header.end()) {
    std::string names;
    for (const auto& h : table.header) names += (names.empty() ? "" : ", ") + h;
    throw base::FieldError("pack", "id_column", path + ": header: found columns " + names + ", expected an id column '" +
                                                    id_column + "'");
  }
  const size_t id_index = static_cast<size_t>(id_it - table.header.begin());
  const size_t width = table.header.size();

  for (size_t r = 1; r < records.size(); ++r) {
    std::vector<std::string> row(width);
    for (size_t c = 0; c < std::min(width, records[r].size()); ++c) row[c] = trim(records[r][c]);
    const std::string where = path + ":" + std::to_string(lines[r]);
    if (records[r].size() != width) {
      problems->push_back({"malformed_row", where,
                           where + ": found " + std::to_string(records[r].size()) + " fields, expected " + std::to_string(width)});
    }
    if (row[id_index].find_first_of("/\\") != std::string::npos || row[id_index] == "." || row[id_index] == "..") {
      throw base::FieldError("pack", "id_column", where + ": " + id_column + ": found '" + row[id_index] +
                                                      "', expected an image file name without folders");
    }
    const std::string id = normalise_image_id(row[id_index]);
    if (id.empty()) {
      problems->push_back({"malformed_row", where, where + ": found an empty " + id_column + ", expected an image id"});
      continue;
    }
    if (table.row_of_id.count(id)) {
      problems->push_back({"duplicate_id", where, where + ": found id '" + id + "' again (first on line " +
                                                      std::to_string(table.lines[table.row_of_id[id]]) + "), expected unique ids"});
      continue;
    }
    table.row_of_id[id] = table.ids.size();
    table.ids.push_back(id);
    table.lines.push_back(lines[r]);
    table.cells.push_back(std::move(row));
  }

  std::vector<size_t> label_indices;
  for (size_t c = 0; c < width; ++c) {
    if (c == id_index) continue;
    std::vector<std::string> cells;
    for (const auto& row : table.cells) cells.push_back(row[c]);
    table.columns.push_back(type_column(table.header[c], cells));
    label_indices.push_back(c);
    const LabelType type = table.columns.back().type;
    if (type != LabelType::kInteger && type != LabelType::kFloat) continue;
    for (size_t r = 0; r < cells.size(); ++r) {
      if (!is_inexact_integer(cells[r])) continue;
      throw std::runtime_error(path + ":" + std::to_string(table.lines[r]) + ": " + table.header[c] + ": found " + cells[r] +
                               ", expected an integer within +-2^53 (labels are stored as float64, where it would round)");
    }
  }
  for (const auto& row : table.cells) {
    std::vector<double> values;
    for (size_t k = 0; k < label_indices.size(); ++k) values.push_back(typed_value(table.columns[k], row[label_indices[k]]));
    table.values.push_back(std::move(values));
  }
  return table;
}

std::vector<uint8_t> assign_split(const LabelTable& table, const std::vector<size_t>& rows, const std::string& split_by,
                                  double test_fraction, uint64_t seed) {
  const auto it = std::find(table.header.begin(), table.header.end(), split_by);
  if (it == table.header.end()) {
    throw base::FieldError("pack", "split_by", table.path + ": header: found no column '" + split_by + "', expected that column");
  }
  const size_t column = static_cast<size_t>(it - table.header.begin());
  // A group key per row; a missing patient makes the image its own group (prefixed so it
  // cannot collide with a real patient id).
  std::vector<std::string> keys;
  for (size_t r : rows) {
    const std::string& cell = table.cells[r][column];
    keys.push_back(is_missing(cell) ? std::string("\x01") + table.ids[r] : "=" + cell);
  }
  std::vector<std::string> groups(keys.begin(), keys.end());
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  SampleRng rng(seed, 0, -2);  // the split's own stream
  for (int64_t i = static_cast<int64_t>(groups.size()) - 1; i > 0; --i) {
    std::swap(groups[static_cast<size_t>(i)], groups[static_cast<size_t>(rng.below(i + 1))]);
  }
  const auto n_test = std::min(groups.size(), static_cast<size_t>(std::ceil(test_fraction * static_cast<double>(groups.size()))));
  const std::set<std::string> test(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(n_test));
  std::vector<uint8_t> split;
  for (const auto& key : keys) split.push_back(test.count(key) ? 1 : 0);
  return split;
}

}  // namespace gf::data
