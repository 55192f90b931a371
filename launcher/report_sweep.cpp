#include "launcher/report_sweep.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include "launcher/report_html.hpp"
#include "launcher/report_svg.hpp"

namespace gf::launcher {

namespace {

using nlohmann::json;

std::string fmt(double v, const char* spec = "%.4g") {
  if (!std::isfinite(v)) return "–";
  char buf[48];
  std::snprintf(buf, sizeof(buf), spec, v);
  return buf;
}

// A pretraining compute measure of energy.json and how it was obtained.
struct Measure {
  const char* key;    // in the page's data block
  const char* label;  // axis label
  double (*of)(const energy::EnergySummary&);
  bool energy_based;  // labelled measured/estimated by the energy meters
};

const Measure kMeasures[] = {
    {"flops", "pretraining FLOPs (analytic)", [](const energy::EnergySummary& e) { return e.flops; }, false},
    {"device_hours", "device-hours (measured; rank-hours on CPU)", [](const energy::EnergySummary& e) { return e.device_hours; }, false},
    {"kwh", "kWh", [](const energy::EnergySummary& e) { return e.kwh; }, true},
    {"cost", "dollars", [](const energy::EnergySummary& e) { return e.cost; }, true},
};

// shared/reference/retfound-green.md §1 and §3: the paper's estimated training costs (its
// basis, FLOPs or GPU time, is not stated).
const Reference kPublished[] = {{"RETFound-Green <$100", 100}, {"RETFound-MEH ~$10,000", 10000}, {"DERETFound ~$14,000", 14000}};

double measure(const SweepRunResult& r, const Measure& m) { return r.energy ? m.of(*r.energy) : NAN; }

// "kWh (estimated)" when any run's energy was not measured.
std::string axis_label(const std::vector<SweepRunResult>& runs, const Measure& m) {
  if (!m.energy_based) return m.label;
  std::string labels;
  for (const auto& r : runs)
    if (r.energy && r.energy_label != "measured" && labels.find(r.energy_label) == std::string::npos)
      labels += (labels.empty() ? "" : ", ") + r.energy_label;
  return labels.empty() ? std::string(m.label) + " (measured)" : std::string(m.label) + " (" + labels + ")";
}

const TaskScore* score(const SweepRunResult& r, const std::string& task) {
  if (task == "mean over tasks") return r.mean ? &*r.mean : nullptr;
  for (const auto& t : r.tasks)
    if (t.task == task) return &t;
  return nullptr;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The legend: run names when they all fit its 20 characters, else each run's axis values in
// field order, less what every run's value of that field shares ("vit_" … "_patch14_reg4"),
// so that grid runs whose names differ only past the 20th character stay apart ("0.5 · tiny · 2").
struct Legend {
  std::vector<std::string> labels;  // one per run
  std::string what;                 // what a label holds: "run names" or the fields, in order
};

Legend legend_of(const std::vector<SweepRunResult>& runs) {
  Legend legend{{}, "run names"};
  bool names_fit = true;
  for (const auto& r : runs) names_fit = names_fit && r.name.size() <= 20;
  if (names_fit || runs.empty()) {
    for (const auto& r : runs) legend.labels.push_back(r.name);
    return legend;
  }
  std::map<std::string, std::vector<std::string>> values;
  for (const auto& r : runs)
    for (const auto& item : r.assignments.items()) values[item.key()].push_back(value_text(item.value()));
  std::map<std::string, std::pair<size_t, size_t>> cut;  // field -> shared prefix and suffix lengths
  for (const auto& [field, texts] : values) {
    const std::string& first = texts.front();
    size_t prefix = first.size(), suffix = first.size(), shortest = first.size();
    for (const auto& t : texts) {
      prefix = std::min(prefix, static_cast<size_t>(std::mismatch(t.begin(), t.end(), first.begin(), first.end()).first - t.begin()));
      suffix = std::min(suffix, static_cast<size_t>(std::mismatch(t.rbegin(), t.rend(), first.rbegin(), first.rend()).first - t.rbegin()));
      shortest = std::min(shortest, t.size());
    }
    cut[field] = prefix + suffix < shortest ? std::make_pair(prefix, suffix) : std::make_pair(size_t{0}, size_t{0});
  }
  legend.what.clear();
  for (const auto& item : runs.front().assignments.items()) legend.what += (legend.what.empty() ? "" : " · ") + item.key();
  for (const auto& r : runs) {
    std::string label;
    for (const auto& item : r.assignments.items()) {
      const std::string t = value_text(item.value());
      const auto [prefix, suffix] = cut[item.key()];
      label += (label.empty() ? "" : " · ") + t.substr(prefix, t.size() - prefix - suffix);
    }
    legend.labels.push_back(label.empty() ? r.name : label);
  }
  return legend;
}

std::string plot(const std::vector<SweepRunResult>& runs, const std::string& task, const Measure& m) {
  std::vector<double> cost, quality;
  for (const auto& r : runs) {
    const TaskScore* s = score(r, task);
    cost.push_back(measure(r, m));
    quality.push_back(s ? s->auroc : NAN);
  }
  const std::vector<bool> frontier = pareto_frontier(cost, quality);
  const std::vector<std::string> labels = legend_of(runs).labels;
  std::vector<FrontierPoint> points;
  for (size_t i = 0; i < runs.size(); ++i) {
    const TaskScore* s = score(runs[i], task);
    if (!s) continue;
    points.push_back({labels[i], cost[i], s->auroc, s->low, s->high, frontier[i]});
  }
  std::vector<Reference> refs;
  if (std::string(m.key) == "cost") refs.assign(std::begin(kPublished), std::end(kPublished));
  return frontier_plot(task + ": AUROC vs " + m.label, points, {axis_label(runs, m), true}, "AUROC (95% bootstrap interval)", refs);
}

std::string runs_table(const std::vector<SweepRunResult>& runs, const std::vector<std::string>& tasks) {
  std::vector<size_t> order(runs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double ca = measure(runs[a], kMeasures[3]), cb = measure(runs[b], kMeasures[3]);
    if (std::isnan(ca) != std::isnan(cb)) return std::isnan(cb);  // runs without a bill last
    return ca < cb;
  });
  std::vector<double> cost, mean;
  for (const auto& r : runs) cost.push_back(measure(r, kMeasures[3])), mean.push_back(r.mean ? r.mean->auroc : NAN);
  const std::vector<bool> frontier = pareto_frontier(cost, mean);
  std::ostringstream s;
  s << "<table class=\"sweep-runs\"><tr><th>run</th><th>settings</th><th>state</th><th>FLOPs</th><th>device-h</th><th>kWh</th>"
       "<th>energy</th><th>$</th><th>mean AUROC [95%]</th><th>frontier ($)</th>";
  for (const auto& t : tasks) s << "<th>" << html_escape(t) << "</th>";
  s << "</tr>";
  for (size_t i : order) {
    const auto& r = runs[i];
    std::string settings;
    for (const auto& item : r.assignments.items()) settings += (settings.empty() ? "" : ", ") + item.key() + "=" + value_text(item.value());
    s << "<tr data-run=\"" << html_escape(r.name) << "\"><td>" << html_escape(r.name) << "</td><td><code>" << html_escape(settings)
      << "</code></td><td>" << html_escape(r.state.state) << "</td>";
    for (const auto& m : kMeasures) {
      if (std::string(m.key) == "cost") s << "<td>" << html_escape(r.energy ? r.energy_label : "–") << "</td>";
      s << "<td>" << fmt(measure(r, m)) << "</td>";
    }
    s << "<td>" << (r.mean ? fmt(r.mean->auroc) + " <span class=\"ci\">[" + fmt(r.mean->low) + ", " + fmt(r.mean->high) + "]</span>" : "–")
      << "</td><td>" << (frontier[i] ? "◆" : "") << "</td>";
    for (const auto& t : tasks) {
      const TaskScore* sc = score(r, t);
      s << "<td>" << (sc ? fmt(sc->auroc) : "–") << "</td>";
    }
    s << "</tr>";
  }
  s << "</table>";
  return s.str();
}

// Everything the page plots, at full precision, for a reader (or a test) to check against the runs' files.
json data_block(const std::vector<SweepRunResult>& runs) {
  json out = json::array();
  for (const auto& r : runs) {
    json j{{"name", r.name}, {"state", r.state.state}, {"energy_label", r.energy_label}, {"energy_sessions", r.energy_sessions}};
    for (const auto& m : kMeasures) j[m.key] = r.energy ? json(m.of(*r.energy)) : json();
    json tasks = json::object();
    for (const auto& t : r.tasks) tasks[t.task] = {{"auroc", t.auroc}, {"low", t.low}, {"high", t.high}};
    if (r.mean) tasks[r.mean->task] = {{"auroc", r.mean->auroc}, {"low", r.mean->low}, {"high", r.mean->high}};
    j["tasks"] = tasks;
    out.push_back(j);
  }
  return out;
}

}  // namespace

std::vector<bool> pareto_frontier(const std::vector<double>& cost, const std::vector<double>& quality) {
  std::vector<size_t> order;
  for (size_t i = 0; i < cost.size(); ++i)
    if (std::isfinite(cost[i]) && std::isfinite(quality[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return cost[a] != cost[b] ? cost[a] < cost[b] : quality[a] > quality[b];
  });
  std::vector<bool> on(cost.size(), false);
  double best = -INFINITY;
  for (size_t i : order)
    if (quality[i] > best) on[i] = true, best = quality[i];
  return on;
}

std::string render_sweep_report(const std::string& sweep_dir, const std::vector<SweepRunResult>& runs) {
  std::vector<std::string> tasks;
  for (const auto& r : runs)
    for (const auto& t : r.tasks)
      if (std::find(tasks.begin(), tasks.end(), t.task) == tasks.end()) tasks.push_back(t.task);
  size_t done = 0;
  for (const auto& r : runs) done += r.state.state == "done";
  const std::string dir = std::filesystem::absolute(sweep_dir).lexically_normal().string();
  std::ostringstream page;
  page << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>greenfound sweep · " << html_escape(dir)
       << "</title><style>" << report_css() << plot_style() << "</style></head><body><header><h1>greenfound sweep report</h1><p><code>"
       << html_escape(dir) << "</code> · " << runs.size() << " runs, " << done << " done</p></header><main>\n";
  page << "<section id=\"frontier\"><h2>Quality vs pretraining compute (mean over tasks)</h2><p class=\"meta\">Each dot is a run: "
          "AUROC averaged over tasks (each resample of the bootstrap averaged the same way) against its pretraining bill "
          "from energy.json. Ringed and joined: the Pareto frontier (no cheaper run is as good). Dashed lines: the "
          "published training-cost estimates (RETFound-Green paper; its basis, FLOPs or GPU time, is not stated). Legend: "
       << html_escape(legend_of(runs).what) << ".</p><div class=\"row\">";
  for (const auto& m : kMeasures) page << plot(runs, "mean over tasks", m);
  page << "</div></section>\n<section id=\"runs\"><h2>Runs by cost</h2>" << runs_table(runs, tasks) << "</section>\n";
  page << "<section id=\"tasks\"><h2>Per task: AUROC vs kWh and dollars</h2><div class=\"row\">";
  for (const auto& t : tasks) page << plot(runs, t, kMeasures[2]) << plot(runs, t, kMeasures[3]);
  page << "</div></section>\n<section id=\"references\"><h2>Published reference points</h2><table><tr><th>model</th>"
          "<th>pretraining images</th><th>estimated training cost</th><th>compute vs RETFound-Green</th></tr>"
          "<tr><td>RETFound-Green</td><td>75,000</td><td>&lt; $100</td><td>1×</td></tr>"
          "<tr><td>RETFound-MEH</td><td>900,000</td><td>$10,000</td><td>400×</td></tr>"
          "<tr><td>DERETFound</td><td>150,000</td><td>$14,000</td><td>600×</td></tr></table><p class=\"meta\">As published "
          "(shared/reference/retfound-green.md: [NC-abs], [moonlight]); estimates of the authors, not measurements.</p></section>\n";
  page << "<script type=\"application/json\" id=\"sweep-data\">" << data_block(runs).dump() << "</script>\n</main></body></html>\n";
  return page.str();
}

}  // namespace gf::launcher
