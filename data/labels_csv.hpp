#pragma once
// The labels CSV of `greenfound pack`: RFC 4180 fields (quotes, CRLF, a UTF-8 BOM), one row
// per image keyed by the id column, every other column typed as a label (see
// data/pack.hpp), and the patient-level train/test split.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/pack.hpp"

namespace gf::data {

struct LabelTable {
  std::string path;
  std::string id_column;
  std::vector<std::string> header;           // every column, as in the file
  std::vector<LabelColumn> columns;          // every column but the id column, typed
  std::vector<std::string> ids;              // per row (normalised, see normalise_image_id)
  std::vector<int> lines;                    // per row: its line in the file (1 = header)
  std::vector<std::vector<std::string>> cells;  // per row, every column, trimmed
  std::vector<std::vector<double>> values;   // per row, per label column (-1 / NaN missing)
  std::map<std::string, size_t> row_of_id;   // first row of each id
};

// Parses and types the CSV. Throws when the file cannot be read, is empty, has no
// `id_column`, more than 4096 columns or a row over 1 MiB, an empty, duplicate or
// '/'-holding column name, an id naming a folder, or an integer label beyond +-2^53.
// Duplicate ids add a "duplicate_id" problem (the first row wins).
LabelTable read_label_table(const std::string& path, const std::string& id_column, std::vector<PackProblem>* problems);

// "IMG_001.JPG" -> "IMG_001": the file name without its image extension, so a CSV may name
// images with or without it (ids with folders are refused by read_label_table).
std::string normalise_image_id(const std::string& value);

// True for the image file extensions `greenfound pack` reads: ".jpg", ".jpeg" and ".png",
// in any letter case (the leading dot included, as std::filesystem::path::extension gives).
bool is_image_extension(const std::string& ext);

// Patient-level split: for each row (by index into table rows), 0 = train, 1 = test. The
// groups are the values of `split_by` (a row with it missing is its own group); sorted,
// shuffled with a generator seeded by `seed`, and the first ceil(fraction x groups) go to test.
std::vector<uint8_t> assign_split(const LabelTable& table, const std::vector<size_t>& rows, const std::string& split_by,
                                  double test_fraction, uint64_t seed);

}  // namespace gf::data
