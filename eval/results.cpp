#include "eval/results.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "base/atomic_file.hpp"
#include "base/json_reader.hpp"
#include "eval/statistics.hpp"

namespace gf::eval {
namespace {

using Key = std::pair<std::string, std::optional<int64_t>>;  // (task, class)

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
nlohmann::json class_json(const std::optional<int64_t>& cls) {
  return cls ? nlohmann::json(*cls) : nlohmann::json(nullptr);
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << v;
  return out.str();
}

std::string column_name(const std::string& task, const std::optional<int64_t>& cls) {
  return cls ? task + " [" + std::to_string(*cls) + "]" : task;
}

// (task, class) columns in task order, classes ascending, as the records hold them.
std::vector<Key> result_columns(const ProbeResults& results) {
  std::vector<Key> columns;
  for (const auto& task : results.tasks) {
    std::map<std::optional<int64_t>, bool> classes;
    for (const auto& r : results.records)
      if (r.task == task) classes[r.cls] = true;
    for (const auto& [cls, unused] : classes) columns.emplace_back(task, cls);
  }
  return columns;
}

std::string results_csv(const ProbeResults& results) {
  std::ostringstream out;
  out << "model,task,class,auroc,auroc_median,auroc_ci_low,auroc_ci_high,auprc,balanced_accuracy,n_train,n_test\n";
  auto number = [](double v) {
    if (!std::isfinite(v)) return std::string();
    std::ostringstream text;
    text << std::setprecision(17) << v;
    return text.str();
  };
  for (const auto& r : results.records)
    out << r.model << ',' << r.task << ',' << (r.cls ? std::to_string(*r.cls) : "") << ',' << number(r.auroc) << ','
        << number(r.auroc_median) << ',' << number(r.auroc_ci_low) << ',' << number(r.auroc_ci_high) << ','
        << number(r.auprc) << ',' << number(r.balanced_accuracy) << ',' << r.n_train << ',' << r.n_test << '\n';
  return out.str();
}

std::string results_markdown(const ProbeResults& results) {
  const std::vector<Key> columns = result_columns(results);
  std::map<std::pair<std::string, Key>, const ProbeRecord*> by_model;
  for (const auto& r : results.records) by_model[{r.model, {r.task, r.cls}}] = &r;
  std::map<Key, const Comparison*> comparisons;
  for (const auto& c : results.comparisons) comparisons[{c.task, c.cls}] = &c;

  std::ostringstream md;
  md << "# Linear probe results\n\n"
     << "Median AUROC over the bootstrap resamples of the test set (best per task in bold); "
     << "last row: Wilcoxon signed-rank p of best vs second best (*** = p < 0.0001).\n\n";
  md << "| model |";
  for (const auto& [task, cls] : columns) md << ' ' << column_name(task, cls) << " |";
  md << "\n|---|";
  for (size_t i = 0; i < columns.size(); ++i) md << "---|";
  md << '\n';
  for (const auto& model : results.models) {
    md << "| " << model << " |";
    for (const auto& key : columns) {
      const auto found = by_model.find({model, key});
      const auto comparison = comparisons.find(key);
      if (found == by_model.end()) {
        md << " - |";
        continue;
      }
      const bool best = comparison != comparisons.end() && comparison->second->best == model;
      const std::string value = fixed(found->second->auroc_median, 4);
      md << ' ' << (best ? "**" + value + "**" : value) << " |";
    }
    md << '\n';
  }
  md << "| p (best vs second) |";
  for (const auto& key : columns) {
    const auto comparison = comparisons.find(key);
    md << ' ' << (comparison == comparisons.end() ? "-" : format_p_value(comparison->second->p_value)) << " |";
  }
  md << "\n\n## Wins\n\nA win: best median AUROC with p < alpha against the second best; otherwise a tie "
     << "for first place for both.\n\n| model | wins | ties |\n|---|---|---|\n";
  for (const auto& model : results.models) {
    int wins = 0, ties = 0;
    for (const auto& c : results.comparisons) {
      if (c.outcome == "win" && c.best == model) ++wins;
      if (c.outcome == "tie" && (c.best == model || c.second == model)) ++ties;
    }
    md << "| " << model << " | " << wins << " | " << ties << " |\n";
  }
  const auto interval = [&](const std::string& model, const Key& key) {
    const auto found = by_model.find({model, key});
    if (found == by_model.end()) return std::string("-");
    const ProbeRecord& r = *found->second;
    return fixed(r.auroc_median, 4) + " [" + fixed(r.auroc_ci_low, 4) + ", " + fixed(r.auroc_ci_high, 4) + "]";
  };
  for (size_t i = 0; i < results.versus.size(); ++i) {
    const PairedComparison& v = results.versus[i];
    if (i == 0 || results.versus[i - 1].model != v.model)
      md << "\n## " << v.model << " against each other model\n\n"
         << "better / worse: its median AUROC above / below the other's with Wilcoxon p < alpha over the paired "
         << "resamples; otherwise a tie.\n\n| task | other | " << v.model
         << " median [95% CI] | other median [95% CI] | p | outcome |\n|---|---|---|---|---|---|\n";
    md << "| " << column_name(v.task, v.cls) << " | " << v.other << " | " << interval(v.model, {v.task, v.cls}) << " | "
       << interval(v.other, {v.task, v.cls}) << " | " << format_p_value(v.p_value) << " | " << v.outcome << " |\n";
  }
  md << "\n## Details\n\n| model | task | class | AUROC | median [95% CI] | AUPRC | balanced accuracy | n train | n test |\n"
     << "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : results.records)
    md << "| " << r.model << " | " << r.task << " | " << (r.cls ? std::to_string(*r.cls) : "") << " | "
       << fixed(r.auroc, 4) << " | " << fixed(r.auroc_median, 4) << " [" << fixed(r.auroc_ci_low, 4) << ", "
       << fixed(r.auroc_ci_high, 4) << "] | " << fixed(r.auprc, 4) << " | " << fixed(r.balanced_accuracy, 4)
       << " | " << r.n_train << " | " << r.n_test << " |\n";
  if (!results.errors.empty()) {
    md << "\n## Errors\n\n";
    for (const auto& e : results.errors)
      md << "- " << e.task << (e.model.empty() ? "" : " (" + e.model + ")") << ": " << e.message << '\n';
  }
  return md.str();
}

}  // namespace

std::vector<Comparison> compare_models(const std::vector<std::string>& models,
                                       const std::vector<std::string>& tasks,
                                       const std::vector<ProbeRecord>& records, double alpha) {
  std::map<std::string, size_t> model_order;
  for (size_t i = 0; i < models.size(); ++i) model_order[models[i]] = i;
  std::map<Key, std::vector<const ProbeRecord*>> groups;
  for (const auto& r : records) groups[{r.task, r.cls}].push_back(&r);
  std::vector<Comparison> comparisons;
  for (const auto& task : tasks)
    for (auto& [key, group] : groups) {
      if (key.first != task || group.size() < 2) continue;
      std::stable_sort(group.begin(), group.end(), [&](const ProbeRecord* a, const ProbeRecord* b) {
        if (a->auroc_median != b->auroc_median) return a->auroc_median > b->auroc_median;
        return model_order[a->model] < model_order[b->model];
      });
      Comparison c;
      c.task = key.first;
      c.cls = key.second;
      c.best = group[0]->model;
      c.second = group[1]->model;
      c.p_value = wilcoxon_signed_rank(group[0]->bootstrap, group[1]->bootstrap).p_value;
      c.outcome = c.p_value < alpha ? "win" : "tie";
      comparisons.push_back(c);
    }
  return comparisons;
}

std::vector<PairedComparison> compare_against(const std::string& model, const std::vector<std::string>& models,
                                              const std::vector<std::string>& tasks,
                                              const std::vector<ProbeRecord>& records, double alpha) {
  std::map<std::pair<std::string, Key>, const ProbeRecord*> by_model;
  std::vector<Key> keys;
  for (const auto& r : records) {
    by_model[{r.model, {r.task, r.cls}}] = &r;
    if (std::find(keys.begin(), keys.end(), Key{r.task, r.cls}) == keys.end()) keys.push_back({r.task, r.cls});
  }
  std::vector<PairedComparison> out;
  for (const auto& task : tasks)
    for (const auto& key : keys) {
      const auto own = by_model.find({model, key});
      if (key.first != task || own == by_model.end()) continue;
      for (const auto& other : models) {
        const auto theirs = by_model.find({other, key});
        if (other == model || theirs == by_model.end()) continue;
        PairedComparison c{key.first, key.second, model, other, 0, "tie"};
        c.p_value = wilcoxon_signed_rank(own->second->bootstrap, theirs->second->bootstrap).p_value;
        if (c.p_value < alpha)
          c.outcome = own->second->auroc_median > theirs->second->auroc_median ? "better" : "worse";
        out.push_back(c);
      }
    }
  return out;
}

std::string format_p_value(double p) {
  if (!std::isfinite(p)) return "n/a";
  if (p < 0.0001) return "***";
  return "p=" + fixed(p, 4);
}

namespace {

// A record's fields but its bootstrap values, once, as (key, field): written and read in this
// order. Scores are doubles, NaN (no score) written as null. `R` is ProbeRecord or const ProbeRecord.
template <class R, class F>
void visit_record(R& r, F&& f) {
  f("model", r.model);
  f("task", r.task);
  f("class", r.cls);
  f("auroc", r.auroc);
  f("auroc_median", r.auroc_median);
  f("auroc_ci_low", r.auroc_ci_low);
  f("auroc_ci_high", r.auroc_ci_high);
  f("auprc", r.auprc);
  f("balanced_accuracy", r.balanced_accuracy);
  f("n_train", r.n_train);
  f("n_test", r.n_test);
}

template <class T>
nlohmann::json field_json(const T& value) {
  if constexpr (std::is_same_v<T, double>) return number_or_null(value);
  else if constexpr (std::is_same_v<T, std::optional<int64_t>>) return class_json(value);
  else return value;
}

ProbeRecord read_record(base::Section& s) {
  ProbeRecord r;
  visit_record(r, [&](const char* key, auto& field) {
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, double>) s.read_or_nan(key, field);
    else s.read(key, field);
  });
  s.read_or_nan("bootstrap", r.bootstrap);
  s.finish();
  return r;
}

}  // namespace

nlohmann::json record_to_json(const ProbeRecord& r, bool with_bootstrap) {
  nlohmann::json j = nlohmann::json::object();
  visit_record(r, [&](const char* key, const auto& field) { j[key] = field_json(field); });
  if (with_bootstrap) {
    nlohmann::json values = nlohmann::json::array();
    for (double v : r.bootstrap) values.push_back(number_or_null(v));
    j["bootstrap"] = values;
  }
  return j;
}

ProbeRecord record_from_json(const nlohmann::json& json, const std::string& source) {
  base::Section s = base::Section::of(json, "", source);
  return read_record(s);
}

nlohmann::json results_to_json(const ProbeResults& results) {
  nlohmann::json j = {{"models", results.models},
                      {"tasks", results.tasks},
                      {"bootstrap", {{"resamples", results.bootstrap}, {"seed", results.seed}}},
                      {"alpha", results.alpha}};
  j["results"] = nlohmann::json::array();
  // With each record's resamples: a sweep's average over tasks needs them, resample by resample.
  for (const auto& r : results.records) j["results"].push_back(record_to_json(r, true));
  j["comparisons"] = nlohmann::json::array();
  for (const auto& c : results.comparisons)
    j["comparisons"].push_back({{"task", c.task},
                                {"class", class_json(c.cls)},
                                {"best", c.best},
                                {"second", c.second},
                                {"p_value", number_or_null(c.p_value)},
                                {"outcome", c.outcome}});
  j["versus"] = nlohmann::json::array();
  for (const auto& v : results.versus)
    j["versus"].push_back({{"task", v.task},
                           {"class", class_json(v.cls)},
                           {"model", v.model},
                           {"other", v.other},
                           {"p_value", number_or_null(v.p_value)},
                           {"outcome", v.outcome}});
  j["errors"] = nlohmann::json::array();
  for (const auto& e : results.errors)
    j["errors"].push_back({{"task", e.task}, {"model", e.model.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.model)},
                           {"message", e.message}});
  return j;
}

ProbeResults results_from_json(const nlohmann::json& json, const std::string& source) {
  base::Section s = base::Section::of(json, "", source);
  ProbeResults results;
  s.read("models", results.models);
  s.read("tasks", results.tasks);
  base::Section bootstrap = s.child("bootstrap");
  bootstrap.read("resamples", results.bootstrap);
  bootstrap.read("seed", results.seed);
  bootstrap.finish();
  s.read("alpha", results.alpha);
  for (base::Section& item : s.children("results")) results.records.push_back(read_record(item));
  for (base::Section& item : s.children("comparisons")) {
    Comparison c;
    item.read("task", c.task);
    item.read("class", c.cls);
    item.read("best", c.best);
    item.read("second", c.second);
    item.read_or_nan("p_value", c.p_value);
    item.read("outcome", c.outcome);
    item.finish();
    results.comparisons.push_back(std::move(c));
  }
  for (base::Section& item : s.children("versus")) {
    PairedComparison v;
    item.read("task", v.task);
    item.read("class", v.cls);
    item.read("model", v.model);
    item.read("other", v.other);
    item.read_or_nan("p_value", v.p_value);
    item.read("outcome", v.outcome);
    item.finish();
    results.versus.push_back(std::move(v));
  }
  for (base::Section& item : s.children("errors")) {
    ProbeError e;
    item.read("task", e.task);
    std::optional<std::string> model;
    item.read("model", model);
    e.model = model.value_or("");
    item.read("message", e.message);
    item.finish();
    results.errors.push_back(std::move(e));
  }
  s.finish();
  return results;
}

std::optional<ProbeResults> read_results(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  return results_from_json(base::load_json_file(path), path);
}

void write_results(const std::string& out_dir, const ProbeResults& results) {
  std::filesystem::create_directories(out_dir);
  const std::filesystem::path dir(out_dir);
  base::write_file_atomic((dir / "results.json").string(), results_to_json(results).dump(2) + "\n");
  base::write_file_atomic((dir / "results.csv").string(), results_csv(results));
  base::write_file_atomic((dir / "results.md").string(), results_markdown(results));
}

}  // namespace gf::eval
