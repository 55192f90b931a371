// libFuzzer target for the labels CSV of `pack` (data/labels_csv.cpp): the input is the CSV,
// read with id column "id" as pack reads it; a table that parses is then split by its second
// column, as `pack --split-by` would. A std::exception is the right answer to a malformed
// file; a crash, a sanitizer report, an allocation past -malloc_limit_mb or a timeout is a
// finding.
#include <cstdint>
#include <exception>
#include <numeric>
#include <vector>

#include "data/labels_csv.hpp"
#include "fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("labels.csv");
  try {
    std::vector<gf::data::PackProblem> problems;
    const gf::data::LabelTable table = gf::data::read_label_table(scratch.write(data, size), "id", &problems);
    if (table.header.size() < 2) return 0;
    std::vector<size_t> rows(table.ids.size());
    std::iota(rows.begin(), rows.end(), size_t{0});
    gf::data::assign_split(table, rows, table.header[1], 0.25, 7);
  } catch (const std::exception&) {
  }
  return 0;
}
