#pragma once
// Internal to eval/: one (model, task) probe — rows, targets, fit, scores and bootstrap.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eval/embeddings_file.hpp"
#include "eval/logistic_probe.hpp"
#include "eval/results.hpp"
#include "eval/tasks.hpp"

namespace gf::eval {

// Every model's files by source name, and the tables read so far (read on first use).
class EmbeddingSources {
 public:
  // models: in --embeddings order; files[model][source] = path.
  EmbeddingSources(std::vector<std::string> models, std::map<std::string, std::map<std::string, std::string>> files);

  const std::vector<std::string>& models() const { return models_; }
  // The file of `model` for `source` ("" = its only file). Throws naming task and model.
  const std::string& path(const std::string& model, const std::string& source, const std::string& task) const;
  const EmbeddingTable& table(const std::string& path);

 private:
  std::vector<std::string> models_;
  std::map<std::string, std::map<std::string, std::string>> files_;
  std::map<std::string, std::shared_ptr<EmbeddingTable>> tables_;
};

// Bootstrap index sets by test-set size: made once, shared by every model of a task (a task's
// test rows are the same for every model).
class BootstrapSets {
 public:
  BootstrapSets(int count, uint32_t seed) : count_(count), seed_(seed) {}
  const std::vector<std::vector<int64_t>>& for_size(int64_t n);

 private:
  int count_;
  uint32_t seed_;
  std::map<int64_t, std::vector<std::vector<int64_t>>> sets_;
};

struct UnitResult {
  std::vector<ProbeRecord> records;
  std::vector<ProbeError> errors;
  double seconds = 0;
};

// Fits and scores `model` on `task`. Rows and targets come from the first model's file of
// each side (the reference); the model's rows are matched to them by id. Bad input becomes
// an error of the result, never an exception.
UnitResult probe_unit(const TaskSpec& task, const std::string& model, EmbeddingSources& sources,
                      BootstrapSets& bootstrap, const LogisticOptions& logistic);

}  // namespace gf::eval
