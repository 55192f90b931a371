#include "launcher/report_html.hpp"

#include <hdf5.h>
#include <torch/version.h>

#include <opencv2/core/version.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "dist/world.hpp"
#include "launcher/report_svg.hpp"

#ifndef GF_GIT_COMMIT
#define GF_GIT_COMMIT "unknown"
#endif

namespace gf::launcher {

namespace {

std::string fmt(double v, const char* spec = "%.4g") {
  if (!std::isfinite(v)) return "–";
  char buf[48];
  std::snprintf(buf, sizeof(buf), spec, v);
  return buf;
}

std::string library_versions() {
  unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
  H5get_libversion(&h5_major, &h5_minor, &h5_release);
  std::ostringstream s;
  s << "LibTorch " << TORCH_VERSION << " · " << dist::mpi_library_version() << " · HDF5 " << h5_major << '.' << h5_minor
    << '.' << h5_release << " · OpenCV " << CV_VERSION;
  return s.str();
}

std::string section(const std::string& id, const std::string& title, const std::string& body) {
  return "<section id=\"" + id + "\"><h2>" + html_escape(title) + "</h2>" + body + "</section>\n";
}

std::string provenance(const std::vector<RunData>& runs) {
  std::ostringstream s;
  s << "<table><tr><th>run</th><th>folder</th><th>hosts</th><th>ranks</th><th>steps logged</th><th>description</th></tr>";
  for (const auto& run : runs) {
    std::set<std::string> hosts;
    std::set<int> ranks;
    for (const auto& e : run.energy_samples.samples) hosts.insert(e.host), ranks.insert(e.rank);
    if (run.energy)
      for (const auto& node : run.energy->nodes) hosts.insert(node.host);
    std::string host_list;
    for (const auto& h : hosts) host_list += (host_list.empty() ? "" : ", ") + h;
    s << "<tr><td>" << html_escape(run.name) << "</td><td><code>" << html_escape(run.dir) << "</code></td><td>"
      << html_escape(host_list.empty() ? "–" : host_list) << "</td><td>" << (ranks.empty() ? std::string("–") : std::to_string(ranks.size()))
      << "</td><td>" << run.metrics.size() << "</td><td>" << html_escape(run.config ? run.config->description : "")
      << "</td></tr>";
  }
  s << "</table>";
  // Each session of each run (a requeued run has several): where and with what it ran.
  std::ostringstream sessions;
  for (const auto& run : runs)
    for (const auto& session : run.provenance.sessions)
      sessions << "<tr><td>" << html_escape(run.name) << "</td><td>" << html_escape(session.started) << "</td><td>"
               << session.start_step << "</td><td>" << html_escape(session.host) << "</td><td>" << session.ranks << " × "
               << session.threads_per_rank << "</td><td>" << html_escape(session.device) << "</td><td>"
               << html_escape(session.backend) << "</td><td><code>" << html_escape(session.greenfound)
               << "</code></td><td>" << html_escape(session.libtorch) << "</td><td>" << html_escape(session.mpi)
               << "</td></tr>";
  if (!sessions.str().empty())
    s << "<table><tr><th>run</th><th>session started (UTC)</th><th>from step</th><th>host (rank 0)</th><th>ranks × threads</th>"
         "<th>device</th><th>backend</th><th>greenfound</th><th>LibTorch</th><th>MPI</th></tr>"
      << sessions.str() << "</table>";
  s << "<p class=\"meta\">This report: greenfound build " << GF_GIT_COMMIT << " · " << html_escape(library_versions())
    << "</p>";
  for (const auto& run : runs)
    if (run.energy_samples.torn_rows > 0)
      s << "<p class=\"note\">" << html_escape(run.dir) << "/energy.csv: " << run.energy_samples.torn_rows
        << " row(s) cut short by a process that stopped mid-write, left out</p>";
  return s.str();
}

std::string config_section(const std::vector<RunData>& runs) {
  std::ostringstream s;
  for (const auto& run : runs) {
    s << "<details" << (runs.size() == 1 ? " open" : "") << "><summary>" << html_escape(run.name) << "</summary>";
    if (!run.config) s << "<p class=\"empty\">no config.json yet</p>";
    else s << "<pre>" << html_escape(train::to_json(*run.config).dump(2)) << "</pre>";
    s << "</details>";
  }
  return s.str();
}

Series metric_series(const RunData& run, const std::string& name, const std::function<double(const train::MetricsRecord&)>& value) {
  Series series{name, {}, {}};
  for (const auto& m : run.metrics) {
    const double v = value(m);
    if (std::isfinite(v)) series.x.push_back(static_cast<double>(m.step)), series.y.push_back(v);
  }
  return series;
}

std::string training_section(const std::vector<RunData>& runs) {
  std::vector<Series> loss, lr;
  for (const auto& run : runs) {
    loss.push_back(metric_series(run, run.name, [](const train::MetricsRecord& m) { return m.loss; }));
    lr.push_back(metric_series(run, run.name, [](const train::MetricsRecord& m) { return m.lr; }));
  }
  return "<div class=\"row\">" + line_plot("Token Reconstruction loss", loss, {"optimizer step"}, {"MSE", true}) +
         line_plot("Learning rate", lr, {"optimizer step"}, {"lr"}) + "</div>";
}

std::string throughput_section(const std::vector<RunData>& runs) {
  std::vector<Series> speed;
  for (const auto& run : runs)
    speed.push_back(metric_series(run, run.name, [](const train::MetricsRecord& m) { return m.images_per_s; }));
  std::string out = "<div class=\"row\">" + line_plot("Training throughput", speed, {"optimizer step"}, {"images/s"});
  for (const auto& run : runs) {
    std::vector<Series> split;
    using Part = double train::StepTimes::*;
    for (const auto& [name, part] : {std::pair<const char*, Part>{"data", &train::StepTimes::data},
                                     {"teacher", &train::StepTimes::teacher},
                                     {"student", &train::StepTimes::student},
                                     {"allreduce", &train::StepTimes::allreduce},
                                     {"optimizer", &train::StepTimes::optimizer}})
      split.push_back(metric_series(run, name, [part = part](const train::MetricsRecord& m) { return m.time_s.*part; }));
    out += line_plot("Step time split · " + run.name, split, {"optimizer step"}, {"seconds"});
  }
  return out + "</div>";
}

std::string energy_section(const std::vector<RunData>& runs) {
  std::string out = "<div class=\"row\">";
  for (const auto& run : runs) {
    std::map<std::string, Series> by_device;
    double t0 = INFINITY;
    std::set<std::string> hosts;
    const auto& samples = run.energy_samples.samples;
    for (const auto& e : samples) t0 = std::min(t0, e.time), hosts.insert(e.host);
    for (const auto& e : samples) {
      // Legend space is short: the host only when there are several.
      const std::string key = (hosts.size() > 1 ? e.host + " " : "") + "r" + std::to_string(e.rank) + " " + e.domain +
                              (e.device.empty() ? "" : ":" + e.device);
      auto& s = by_device[key];
      s.name = key + (e.label == "estimated" ? " (est.)" : "");
      s.x.push_back(e.time - t0);
      s.y.push_back(e.watts);
    }
    std::vector<Series> power;
    for (auto& [key, s] : by_device) power.push_back(std::move(s));
    out += line_plot("Power per device · " + run.name, power, {"seconds since start"}, {"watts"});
    std::vector<Bar> phases;
    if (run.energy)
      for (int p = 0; p < energy::kNumPhases; ++p)
        phases.push_back({energy::phase_name(static_cast<energy::Phase>(p)), run.energy->phase_joules[p]});
    out += bar_plot("Energy by phase · " + run.name, phases, "J");
  }
  return out + "</div>";
}

std::string cost_section(const std::vector<RunData>& runs) {
  using Summary = energy::EnergySummary;
  struct Row {
    const char* label;
    std::function<std::string(const Summary&)> cell;
  };
  auto field = [](double Summary::*member, const char* spec) {
    return [member, spec](const Summary& e) { return fmt(e.*member, spec); };
  };
  auto domain = [](energy::Domain d) {
    return [d](const Summary& e) {
      const auto& energy = e.domains[static_cast<int>(d)];
      return fmt(energy.joules) + " " + energy::label_name(energy.label);
    };
  };
  const std::vector<Row> rows = {
      {"wall time (s)", field(&Summary::duration_s, "%.1f")},
      {"energy (J)", field(&Summary::joules, "%.4g")},
      {"package (J)", domain(energy::Domain::kPackage)},
      {"dram (J)", domain(energy::Domain::kDram)},
      {"gpu (J)", domain(energy::Domain::kGpu)},
      {"kWh × PUE", field(&Summary::kwh_x_pue, "%.4g")},
      {"CO2e (kg)", field(&Summary::co2e_kg, "%.3g")},
      {"carbon intensity (g/kWh)", field(&Summary::carbon_g_per_kwh, "%.0f")},
      {"device-hours", field(&Summary::device_hours, "%.4g")},
      {"cost (USD)", field(&Summary::cost, "%.4g")},
      {"images", field(&Summary::images, "%.0f")},
      {"J / image", field(&Summary::joules_per_image, "%.4g")},
      {"USD / image", field(&Summary::cost_per_image, "%.3g")},
      {"analytic FLOPs", field(&Summary::flops, "%.3e")},
  };
  std::ostringstream s;
  s << "<table><tr><th></th>";
  for (const auto& run : runs) s << "<th>" << html_escape(run.name) << "</th>";
  s << "</tr>";
  for (const auto& row : rows) {
    s << "<tr><td>" << row.label << "</td>";
    for (const auto& run : runs) s << "<td>" << html_escape(run.energy ? row.cell(*run.energy) : "–") << "</td>";
    s << "</tr>";
  }
  s << "</table><p class=\"meta\">Published reference: RETFound-Green trained for &lt;$100 vs $10,000 (RETFound-MEH) and "
       "$14,000 (DERETFound). Energy labels: <em>measured</em> (RAPL, NVML) or <em>estimated</em> (CPU/GPU time × TDP share).</p>";
  return s.str();
}

std::string row_name(const std::string& task, const std::optional<int64_t>& cls) {
  return task + (cls ? " [" + std::to_string(*cls) + "]" : "");
}

// One run's probe table: (task, class) rows × model columns of median AUROC with the
// interval, best in bold; then the wins table and the interval plot.
std::string probe_table(const std::string& run_name, const eval::ProbeResults& results) {
  std::vector<std::string> rows;
  std::map<std::string, std::map<std::string, const eval::ProbeRecord*>> table;
  std::vector<Interval> intervals;
  for (const auto& r : results.records) {
    const std::string row = row_name(r.task, r.cls);
    if (!table.count(row)) rows.push_back(row);
    table[row][r.model] = &r;
    intervals.push_back({row, r.model, r.auroc_median, r.auroc_ci_low, r.auroc_ci_high});
  }
  std::map<std::string, const eval::Comparison*> comparison;
  for (const auto& c : results.comparisons) comparison[row_name(c.task, c.cls)] = &c;
  std::map<std::string, int> wins, ties;
  std::ostringstream s;
  s << "<h3>" << html_escape(run_name) << "</h3><table><tr><th>task</th>";
  for (const auto& m : results.models) s << "<th>" << html_escape(m) << "</th>";
  s << "<th>best vs second: p</th><th>outcome</th></tr>";
  for (const auto& row : rows) {
    s << "<tr><td>" << html_escape(row) << "</td>";
    const eval::Comparison* cmp = comparison.count(row) ? comparison[row] : nullptr;
    for (const auto& m : results.models) {
      if (!table[row].count(m)) {
        s << "<td>–</td>";
        continue;
      }
      const eval::ProbeRecord& r = *table[row][m];
      const bool best = cmp != nullptr && cmp->best == m;
      s << "<td>" << (best ? "<b>" : "") << fmt(r.auroc_median, "%.4f") << (best ? "</b>" : "") << " <span class=\"ci\">["
        << fmt(r.auroc_ci_low, "%.3f") << ", " << fmt(r.auroc_ci_high, "%.3f") << "]</span></td>";
    }
    if (cmp != nullptr) {
      s << "<td>" << (cmp->p_value < 1e-4 ? "***" : fmt(cmp->p_value, "%.4f")) << "</td><td>" << html_escape(cmp->outcome)
        << "</td>";
      if (cmp->outcome == "win") ++wins[cmp->best];
      else ++ties[cmp->best], ++ties[cmp->second];
    } else {
      s << "<td>–</td><td>–</td>";
    }
    s << "</tr>";
  }
  s << "</table><table class=\"wins\"><tr><th>model</th><th>significant wins</th><th>ties for first</th></tr>";
  for (const auto& m : results.models)
    s << "<tr><td>" << html_escape(m) << "</td><td>" << wins[m] << "</td><td>" << ties[m] << "</td></tr>";
  s << "</table>" << interval_plot("AUROC by task · " + run_name, intervals, "AUROC");
  for (const auto& e : results.errors)
    s << "<p class=\"note\">" << html_escape(e.task + (e.model.empty() ? "" : " (" + e.model + ")") + ": " + e.message)
      << "</p>";
  return s.str();
}

// probe --versus: each named model against each other one per task, with both intervals.
std::string versus_table(const eval::ProbeResults& results) {
  if (results.versus.empty()) return "";
  std::map<std::pair<std::string, std::string>, const eval::ProbeRecord*> records;
  for (const auto& r : results.records) records[{r.model, row_name(r.task, r.cls)}] = &r;
  const auto cell = [&](const std::string& model, const std::string& row) {
    const auto found = records.find({model, row});
    if (found == records.end()) return std::string("–");
    const eval::ProbeRecord& r = *found->second;
    return fmt(r.auroc_median, "%.4f") + " <span class=\"ci\">[" + fmt(r.auroc_ci_low, "%.3f") + ", " +
           fmt(r.auroc_ci_high, "%.3f") + "]</span>";
  };
  std::ostringstream s;
  for (size_t i = 0; i < results.versus.size(); ++i) {
    const eval::PairedComparison& v = results.versus[i];
    if (i == 0 || results.versus[i - 1].model != v.model)
      s << (i == 0 ? "" : "</table>") << "<p>Did " << html_escape(v.model) << " beat each other model? <em>better</em> / "
        << "<em>worse</em>: its median above / below the other's with Wilcoxon p &lt; " << results.alpha
        << " over the paired resamples, else <em>tie</em>.</p><table class=\"versus\"><tr><th>task</th><th>other</th><th>"
        << html_escape(v.model) << "</th><th>other</th><th>p</th><th>outcome</th></tr>";
    const std::string row = row_name(v.task, v.cls);
    s << "<tr><td>" << html_escape(row) << "</td><td>" << html_escape(v.other) << "</td><td>" << cell(v.model, row)
      << "</td><td>" << cell(v.other, row) << "</td><td>" << (v.p_value < 1e-4 ? "***" : fmt(v.p_value, "%.4f"))
      << "</td><td>" << html_escape(v.outcome) << "</td></tr>";
  }
  s << "</table>";
  return s.str();
}

std::string probe_section(const std::vector<RunData>& runs) {
  std::string out;
  for (const auto& run : runs)
    if (run.results) out += probe_table(run.name, *run.results) + versus_table(*run.results);
  if (out.empty()) out = "<p class=\"empty\">No probe results yet (run <code>greenfound probe --out RUN_DIR/probe</code>).</p>";
  return out;
}

std::string samples_section(const std::vector<RunData>& runs, const ReportOptions& options) {
  std::ostringstream s;
  for (const auto& run : runs) {
    std::string why;
    std::string png;
    try {
      png = sample_grid_png_base64(run, options.sample_images, &why);
    } catch (const std::exception& e) {
      why = e.what();
    }
    s << "<h3>" << html_escape(run.name) << "</h3>";
    if (png.empty()) s << "<p class=\"empty\">" << html_escape(why.empty() ? "no samples requested" : why) << "</p>";
    else s << "<img class=\"samples\" alt=\"clean inputs (top) and the student's corrupted views (bottom)\" src=\"data:image/png;base64,"
           << png << "\"/><p class=\"meta\">Top: the augmented input the teacher sees. Bottom: the student's view — Gaussian "
              "pixel noise (0.2 × per-channel std) and patch tokens replaced by the corruption token (dark squares); the "
              "last image of a batch stays clean.</p>";
  }
  return s.str();
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2a22;background:#f4f7f4}
header{background:#1b5e20;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
main{padding:8px 32px 40px;max-width:1400px}section{background:#fff;border-radius:8px;padding:12px 20px;margin:16px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{font-size:17px;margin:6px 0 10px;color:#1b5e20}h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border-bottom:1px solid #e3e8e3;padding:4px 10px;text-align:left;
font-variant-numeric:tabular-nums}th{background:#eef4ee}.row{display:flex;flex-wrap:wrap;gap:12px}
.ci{color:#7a867d;font-size:12px}
.meta{color:#5b6a60;font-size:12px}.note{color:#a84300}pre{background:#f7f9f7;padding:8px;overflow:auto;max-height:360px}
img.samples{width:100%;max-width:900px;image-rendering:pixelated;border-radius:4px}code{font-size:12px}
)";

}  // namespace

const char* report_css() { return kStyle; }

std::string render_report(const std::vector<RunData>& runs, const ReportOptions& options) {
  std::string names;
  for (const auto& run : runs) names += (names.empty() ? "" : " vs ") + run.name;
  std::ostringstream page;
  page << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>greenfound report · " << html_escape(names)
       << "</title><style>" << kStyle << plot_style() << "</style></head><body><header><h1>greenfound run report</h1><p>"
       << html_escape(names) << "</p></header><main>\n"
       << section("provenance", "Provenance", provenance(runs)) << section("config", "Resolved configuration", config_section(runs))
       << section("training", "Training curves", training_section(runs))
       << section("throughput", "Throughput and step time", throughput_section(runs))
       << section("energy", "Power and energy", energy_section(runs)) << section("cost", "Energy, carbon and cost", cost_section(runs))
       << section("probe", "Linear probes", probe_section(runs))
       << section("samples", "Inputs and the student's corrupted views", samples_section(runs, options))
       << "</main></body></html>\n";
  return page.str();
}

}  // namespace gf::launcher
