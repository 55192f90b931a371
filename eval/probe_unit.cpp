#include "eval/probe_unit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "base/error.hpp"
#include "eval/metrics.hpp"
#include "eval/statistics.hpp"

namespace gf::eval {
namespace {

// Multiclass targets beyond this many distinct values are not classes (a continuous column).
constexpr size_t kMaxClasses = 100;

// An input problem of one (task, model): reported in results.json "errors", the rest runs.
struct UnitError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string values_text(const std::set<double>& values) {
  std::ostringstream out;
  out << '{';
  size_t shown = 0;
  for (double v : values) {
    if (shown++) out << ", ";
    if (shown > 8) {
      out << "...";
      break;
    }
    out << v;
  }
  out << '}';
  return out.str();
}

// Row of `table` holding each id of `reference` at `rows`; throws when the id sets differ.
std::vector<int64_t> match_rows(const EmbeddingTable& table, const std::string& path,
                                const EmbeddingTable& reference, const std::string& reference_path,
                                const std::vector<int64_t>& rows, const std::string& model,
                                const std::string& reference_model) {
  if (table.ids == reference.ids) return rows;
  std::unordered_map<std::string, int64_t> position;
  for (int64_t i = 0; i < table.rows(); ++i) position.emplace(table.ids[i], i);
  int64_t missing = 0;
  std::string example;
  for (const auto& id : reference.ids)
    if (!position.count(id) && missing++ == 0) example = id;
  const int64_t extra = table.rows() - (reference.rows() - missing);
  if (missing > 0 || extra > 0 || static_cast<int64_t>(position.size()) != table.rows())
    throw UnitError("model " + model + ": " + path + ": ids differ from model " + reference_model + "'s " +
                    reference_path + " (" + std::to_string(missing) + " of its ids missing" +
                    (example.empty() ? "" : ", e.g. \"" + example + "\"") + ", " + std::to_string(std::max<int64_t>(extra, 0)) +
                    " extra), expected the same images");
  std::vector<int64_t> matched(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) matched[i] = position.at(reference.ids[rows[i]]);
  return matched;
}

// The rows one side of a task uses and their targets, from the reference (first) model's
// file: task-level problems (column, filter, split) surface here, the same for every model.
TaskRows task_rows(const TaskSpec& task, const SplitRef& ref, EmbeddingSources& sources) {
  const std::string& reference_path = sources.path(sources.models().front(), ref.source, task.name);
  return select_rows(task, sources.table(reference_path), ref);
}

// The model's embeddings of those rows (matched by id), as double [n, D].
at::Tensor model_rows(const TaskSpec& task, const SplitRef& ref, const std::vector<int64_t>& reference_rows,
                      const std::string& model, EmbeddingSources& sources) {
  const std::string& reference_model = sources.models().front();
  const std::string& reference_path = sources.path(reference_model, ref.source, task.name);
  const std::string& path = sources.path(model, ref.source, task.name);
  const EmbeddingTable& reference = sources.table(reference_path);
  const EmbeddingTable* loaded = nullptr;
  try {
    loaded = &sources.table(path);
  } catch (const std::runtime_error& e) {
    throw UnitError("model " + model + ": " + e.what());
  }
  const EmbeddingTable& table = *loaded;
  const std::vector<int64_t> rows = match_rows(table, path, reference, reference_path, reference_rows, model,
                                               reference_model);
  at::Tensor x = at::empty({static_cast<int64_t>(rows.size()), table.dim}, at::kFloat);
  float* out = x.data_ptr<float>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* row = table.row(rows[i]);
    for (int64_t d = 0; d < table.dim; ++d) {
      if (!std::isfinite(row[d]))
        throw UnitError("model " + model + ": " + path + ": embedding of id \"" + table.ids[rows[i]] +
                        "\" has a non-finite value (" + std::to_string(row[d]) + "), expected finite embeddings");
      out[i * table.dim + d] = row[d];
    }
  }
  return x.to(at::kDouble);
}

// Class values of the training targets, checked against the task's kind.
std::vector<double> training_classes(const TaskSpec& task, const TaskRows& train, const TaskRows& test, TaskKind& kind) {
  const std::set<double> values(train.target.begin(), train.target.end());
  if (values.empty()) throw UnitError("the training set is empty (split, filter and missing labels leave no rows)");
  if (test.target.empty()) throw UnitError("the test set is empty (split, filter and missing labels leave no rows)");
  const bool zero_one = std::all_of(values.begin(), values.end(), [](double v) { return v == 0 || v == 1; });
  kind = task.kind == TaskKind::kAuto ? (zero_one ? TaskKind::kBinary : TaskKind::kMulticlass) : task.kind;
  if (kind == TaskKind::kBinary) {
    std::set<double> all = values;
    all.insert(test.target.begin(), test.target.end());
    if (!std::all_of(all.begin(), all.end(), [](double v) { return v == 0 || v == 1; }))
      throw UnitError("kind binary: found label values " + values_text(all) +
                      ", expected 0/1 (derive a target such as \"" + task.column + " > 0\")");
  } else {
    for (double v : values)
      if (v != std::floor(v))
        throw UnitError("kind multiclass: found label value " + std::to_string(v) + ", expected integer classes");
    if (values.size() > kMaxClasses)
      throw UnitError("kind multiclass: found " + std::to_string(values.size()) + " distinct values, expected at most " +
                      std::to_string(kMaxClasses) + " classes");
  }
  if (values.size() < 2)
    throw UnitError("single-class training set: all " + std::to_string(train.target.size()) +
                    " training rows have label " + values_text(values) + ", expected at least two classes");
  return {values.begin(), values.end()};
}

}  // namespace

EmbeddingSources::EmbeddingSources(std::vector<std::string> models,
                                   std::map<std::string, std::map<std::string, std::string>> files)
    : models_(std::move(models)), files_(std::move(files)) {
  if (models_.empty()) throw base::FieldError("probe", "embeddings", "found none, expected at least one MODEL=FILE");
}

const std::string& EmbeddingSources::path(const std::string& model, const std::string& source,
                                          const std::string& task) const {
  const auto& files = files_.at(model);
  const auto found = files.find(source);
  // No source named: the file given as MODEL=FILE, or the model's only file.
  if (source.empty() && found == files.end()) {
    if (files.size() == 1) return files.begin()->second;
    throw UnitError("model " + model + " has " + std::to_string(files.size()) +
                    " embeddings files and none without a source, expected the task to name a source in train/test");
  }
  if (found == files.end())
    throw UnitError("model " + model + " has no embeddings file for source \"" + source +
                    "\", expected " + model + ":" + source + "=FILE among the embeddings");
  return found->second;
}

const EmbeddingTable& EmbeddingSources::table(const std::string& path) {
  auto& slot = tables_[path];
  if (!slot) {
    auto table = std::make_shared<EmbeddingTable>(read_embeddings(path));
    // An id given twice would count one image twice (in train and test, or in a bootstrap set).
    std::map<std::string, int64_t> first_row;
    for (int64_t i = 0; i < table->rows(); ++i) {
      const auto [at, fresh] = first_row.emplace(table->ids[static_cast<size_t>(i)], i);
      if (!fresh)
        throw std::runtime_error(path + ": id '" + at->first + "' is on rows " + std::to_string(at->second) + " and " +
                                 std::to_string(i) + ", expected each image once");
    }
    slot = table;
  }
  return *slot;
}

const std::vector<std::vector<int64_t>>& BootstrapSets::for_size(int64_t n) {
  auto found = sets_.find(n);
  if (found == sets_.end()) found = sets_.emplace(n, bootstrap_indices(n, count_, seed_)).first;
  return found->second;
}

UnitResult probe_unit(const TaskSpec& task, const std::string& model, EmbeddingSources& sources,
                      BootstrapSets& bootstrap, const LogisticOptions& logistic) {
  const auto started = std::chrono::steady_clock::now();
  UnitResult result;
  try {
    const TaskRows train = task_rows(task, task.train, sources);
    const TaskRows test = task_rows(task, task.test, sources);
    TaskKind kind = TaskKind::kAuto;
    const std::vector<double> classes = training_classes(task, train, test, kind);
    const at::Tensor x_train = model_rows(task, task.train, train.rows, model, sources);
    const at::Tensor x_test = model_rows(task, task.test, test.rows, model, sources);
    const auto class_index = [&](double v) {
      const auto it = std::lower_bound(classes.begin(), classes.end(), v);
      return it != classes.end() && *it == v ? static_cast<int64_t>(it - classes.begin()) : int64_t{-1};
    };
    std::vector<int64_t> train_index(train.target.size());
    for (size_t i = 0; i < train.target.size(); ++i) train_index[i] = class_index(train.target[i]);
    const at::Tensor y = at::tensor(train_index, at::kLong);

    StandardScaler scaler;
    scaler.fit(x_train);
    LogisticRegression probe(logistic);
    probe.fit(scaler.transform(x_train), y, static_cast<int64_t>(classes.size()));
    const at::Tensor proba = probe.predict_proba(scaler.transform(x_test)).contiguous();

    const int64_t n_test = static_cast<int64_t>(test.target.size());
    const at::Tensor predicted = proba.argmax(1).contiguous();
    const auto predicted_index = predicted.accessor<int64_t, 1>();
    const auto p = proba.accessor<double, 2>();
    std::vector<int64_t> y_true(n_test), y_pred(n_test);
    for (int64_t i = 0; i < n_test; ++i) {
      y_true[i] = static_cast<int64_t>(test.target[i]);
      y_pred[i] = static_cast<int64_t>(classes[predicted_index[i]]);
    }
    const double balanced = balanced_accuracy(y_true, y_pred);
    const auto& resamples = bootstrap.for_size(n_test);
    // Binary: one score, P(class 1). Multiclass: one-vs-rest per class from predict_proba.
    const bool binary = kind == TaskKind::kBinary;
    for (size_t c = binary ? 1 : 0; c < classes.size(); ++c) {
      std::vector<double> scores(n_test);
      std::vector<uint8_t> positive(n_test);
      for (int64_t i = 0; i < n_test; ++i) {
        scores[i] = p[i][static_cast<int64_t>(c)];
        positive[i] = test.target[i] == classes[c];
      }
      const int64_t positives = std::count(positive.begin(), positive.end(), 1);
      const std::string which = binary ? "" : "class " + std::to_string(static_cast<int64_t>(classes[c])) + ": ";
      if (positives == 0 || positives == n_test) {
        result.errors.push_back({task.name, model,
                                 "task " + task.name + ": " + which + "the test set has " +
                                     (positives == 0 ? "no" : "only") + " positives (" + std::to_string(n_test) +
                                     " rows), expected both classes for AUROC"});
        continue;
      }
      ProbeRecord record;
      record.model = model;
      record.task = task.name;
      if (!binary) record.cls = static_cast<int64_t>(classes[c]);
      record.auroc = auroc(scores, positive);
      record.bootstrap.reserve(resamples.size());
      for (const auto& index : resamples) record.bootstrap.push_back(auroc(scores, positive, index));
      record.auroc_median = median(record.bootstrap);
      record.auroc_ci_low = percentile(record.bootstrap, 2.5);
      record.auroc_ci_high = percentile(record.bootstrap, 97.5);
      record.auprc = average_precision(scores, positive);
      record.balanced_accuracy = balanced;
      record.n_train = static_cast<int64_t>(train.target.size());
      record.n_test = n_test;
      result.records.push_back(std::move(record));
    }
  } catch (const std::runtime_error& e) {
    // Input problems (UnitError, a missing column or split, an unreadable file, a solver that
    // did not converge) stay confined to this (task, model).
    const std::string prefix = "task " + task.name + ": ";
    const std::string message = e.what();
    result.errors.push_back({task.name, model, message.rfind(prefix, 0) == 0 ? message : prefix + message});
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace gf::eval
