#pragma once
// Probe results: per (model, task, class) scores, best-vs-second comparisons, and the files
// rank 0 writes (results.json, results.csv, results.md).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gf::eval {

struct ProbeRecord {
  std::string model, task;
  std::optional<int64_t> cls;  // the class of a one-vs-rest score; none for binary tasks
  double auroc = 0;            // on the whole test set
  double auroc_median = 0, auroc_ci_low = 0, auroc_ci_high = 0;  // bootstrap median, 2.5/97.5%
  double auprc = 0;
  double balanced_accuracy = 0;  // of the task's predictions (the same for every class row)
  int64_t n_train = 0, n_test = 0;
  std::vector<double> bootstrap;  // AUROC per resample (NaN where a resample had one class)
};

struct Comparison {
  std::string task;
  std::optional<int64_t> cls;
  std::string best, second;  // by bootstrap median; ties broken by model order
  double p_value = 0;        // Wilcoxon signed-rank of best vs second (NaN: all equal)
  std::string outcome;       // "win" when p < alpha, else "tie"
};

// One model against another on one (task, class): did it score higher, lower, or neither?
struct PairedComparison {
  std::string task;
  std::optional<int64_t> cls;
  std::string model, other;
  double p_value = 0;   // Wilcoxon signed-rank over the paired bootstrap AUROCs (NaN: all equal)
  std::string outcome;  // "better" / "worse" (model's median above / below other's, p < alpha), else "tie"
};

struct ProbeError {
  std::string task, model;  // model "" when the task failed for every model
  std::string message;
};

struct ProbeResults {
  std::vector<std::string> models;  // in --embeddings order
  std::vector<std::string> tasks;   // in task file order
  std::vector<ProbeRecord> records;
  std::vector<Comparison> comparisons;
  std::vector<PairedComparison> versus;  // probe --versus MODEL...: each against every other, in that order
  std::vector<ProbeError> errors;
  int bootstrap = 100;  // resamples, seed and alpha the results were made with
  uint32_t seed = 42;
  double alpha = 0.05;
};

// One comparison per (task, class) with at least two models scored: best and second by
// bootstrap median, Wilcoxon over the paired bootstrap AUROCs (pairs with a NaN dropped).
std::vector<Comparison> compare_models(const std::vector<std::string>& models,
                                       const std::vector<std::string>& tasks,
                                       const std::vector<ProbeRecord>& records, double alpha);

// `model` against every other model on each (task, class) both scored, in task then model order.
std::vector<PairedComparison> compare_against(const std::string& model, const std::vector<std::string>& models,
                                              const std::vector<std::string>& tasks,
                                              const std::vector<ProbeRecord>& records, double alpha);

// "***" below 1e-4, else "p=0.0123" (the published display).
std::string format_p_value(double p);

// results.json, and back; errors are base::FieldErrors naming `source` and the field.
nlohmann::json results_to_json(const ProbeResults& results);
ProbeResults results_from_json(const nlohmann::json& json, const std::string& source);
// A results.json (nullopt when the file is absent).
std::optional<ProbeResults> read_results(const std::string& path);
// One "results" entry (with "bootstrap" when asked), and back.
nlohmann::json record_to_json(const ProbeRecord& record, bool with_bootstrap);
ProbeRecord record_from_json(const nlohmann::json& json, const std::string& source);

// Writes out_dir/results.json, results.csv and results.md (each atomically).
void write_results(const std::string& out_dir, const ProbeResults& results);

}  // namespace gf::eval
