// libFuzzer target for the probe's --tasks file (eval/tasks.cpp): the input is the tasks
// JSON; every task it defines then selects its train and test rows from a small embeddings
// table (a split, an integer, a category and a float column), as `probe` does. A
// std::exception is the right answer to a malformed file; a crash, a sanitizer report, an
// allocation past -malloc_limit_mb or a timeout is a finding.
#include <cmath>
#include <cstdint>
#include <exception>

#include "eval/tasks.hpp"
#include "fuzz/scratch_file.hpp"

namespace {

gf::eval::EmbeddingTable small_table() {
  gf::eval::EmbeddingTable table;
  table.dim = 2;
  gf::eval::LabelColumn grade, site, score;
  site.type = "category";
  site.categories = {"A", "B"};
  score.integer = false;
  for (int i = 0; i < 12; ++i) {
    table.ids.push_back("P" + std::to_string(i));
    table.split.push_back(i % 3 == 0 ? "test" : "train");
    table.values.insert(table.values.end(), {static_cast<float>(i), static_cast<float>(-i)});
    grade.values.push_back(i == 5 ? NAN : i % 3);
    site.values.push_back(i % 2);
    score.values.push_back(i == 7 ? NAN : 0.25 * i);
  }
  table.labels = {{"grade", grade}, {"site", site}, {"score", score}};
  table.split_by = "patient";
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gf::fuzz::ScratchFile scratch("tasks.json");
  static const gf::eval::EmbeddingTable table = small_table();
  try {
    for (const gf::eval::TaskSpec& task : gf::eval::load_tasks(scratch.write(data, size))) {
      for (const gf::eval::SplitRef* side : {&task.train, &task.test}) {
        try {
          gf::eval::select_rows(task, table, *side);
        } catch (const std::exception&) {
        }
      }
    }
  } catch (const std::exception&) {
  }
  return 0;
}
