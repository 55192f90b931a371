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

using nlohmann::json;

std::string fmt(double v, const char* spec = "%.4g") {
  if (!std::isfinite(v)) return "–";
  char buf[48];
  std::snprintf(buf, sizeof(buf), spec, v);
  return buf;
}

double num_at(const json& j, std::initializer_list<const char*> path) {
  const json* node = &j;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return NAN;
    node = &(*node)[key];
  }
  return node->is_number() ? node->get<double>() : NAN;
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
    for (const auto& e : run.energy_samples) hosts.insert(e.host), ranks.insert(e.rank);
    if (run.energy.contains("nodes"))
      for (const auto& node : run.energy["nodes"]) hosts.insert(node.value("host", ""));
    std::string host_list;
    for (const auto& h : hosts) host_list += (host_list.empty() ? "" : ", ") + h;
    s << "<tr><td>" << html_escape(run.name) << "</td><td><code>" << html_escape(run.dir) << "</code></td><td>"
      << html_escape(host_list.empty() ? "–" : host_list) << "</td><td>" << (ranks.empty() ? std::string("–") : std::to_string(ranks.size()))
      << "</td><td>" << run.metrics.size() << "</td><td>" << html_escape(run.config.is_object() ? run.config.value("description", "") : "")
      << "</td></tr>";
  }
  s << "</table>";
  // Each session of each run (a requeued run has several): where and with what it ran.
  std::ostringstream sessions;
  for (const auto& run : runs) {
    if (!run.provenance.is_object() || !run.provenance.contains("sessions")) continue;
    for (const auto& session : run.provenance["sessions"]) {
      auto cell = [&](const char* key) {
        if (!session.contains(key)) return std::string("–");
        return html_escape(session[key].is_string() ? session[key].get<std::string>() : session[key].dump());
      };
      sessions << "<tr><td>" << html_escape(run.name) << "</td><td>" << cell("started") << "</td><td>" << cell("start_step")
               << "</td><td>" << cell("host") << "</td><td>" << cell("ranks") << " × " << cell("threads_per_rank") << "</td><td>"
               << cell("device") << "</td><td>" << cell("backend") << "</td><td><code>" << cell("greenfound")
               << "</code></td><td>" << cell("libtorch") << "</td><td>" << cell("mpi") << "</td></tr>";
    }
  }
  if (!sessions.str().empty())
    s << "<table><tr><th>run</th><th>session started (UTC)</th><th>from step</th><th>host (rank 0)</th><th>ranks × threads</th>"
         "<th>device</th><th>backend</th><th>greenfound</th><th>LibTorch</th><th>MPI</th></tr>"
      << sessions.str() << "</table>";
  s << "<p class=\"meta\">This report: greenfound build " << GF_GIT_COMMIT << " · " << html_escape(library_versions())
    << "</p>";
  for (const auto& run : runs)
    for (const auto& note : run.notes) s << "<p class=\"note\">" << html_escape(note) << "</p>";
  return s.str();
}

std::string config_section(const std::vector<RunData>& runs) {
  std::ostringstream s;
  for (const auto& run : runs) {
    s << "<details" << (runs.size() == 1 ? " open" : "") << "><summary>" << html_escape(run.name) << "</summary>";
    if (run.config.is_null()) s << "<p class=\"empty\">no config.json yet</p>";
    else s << "<pre>" << html_escape(run.config.dump(2)) << "</pre>";
    s << "</details>";
  }
  return s.str();
}

Series metric_series(const RunData& run, const std::string& name, const std::string& key, const std::string& sub = "") {
  Series series{name, {}, {}};
  for (const auto& m : run.metrics) {
    const double v = sub.empty() ? num_at(m, {key.c_str()}) : num_at(m, {key.c_str(), sub.c_str()});
    const double step = num_at(m, {"step"});
    if (std::isfinite(v) && std::isfinite(step)) series.x.push_back(step), series.y.push_back(v);
  }
  return series;
}

std::string training_section(const std::vector<RunData>& runs) {
  std::vector<Series> loss, lr;
  for (const auto& run : runs) {
    loss.push_back(metric_series(run, run.name, "loss"));
    lr.push_back(metric_series(run, run.name, "lr"));
  }
  return "<div class=\"row\">" + line_plot("Token Reconstruction loss", loss, {"optimizer step"}, {"MSE", true}) +
         line_plot("Learning rate", lr, {"optimizer step"}, {"lr"}) + "</div>";
}

std::string throughput_section(const std::vector<RunData>& runs) {
  std::vector<Series> speed;
  for (const auto& run : runs) speed.push_back(metric_series(run, run.name, "images_per_s"));
  std::string out = "<div class=\"row\">" + line_plot("Training throughput", speed, {"optimizer step"}, {"images/s"});
  for (const auto& run : runs) {
    std::vector<Series> split;
    for (const char* part : {"data", "teacher", "student", "allreduce", "optimizer"})
      split.push_back(metric_series(run, part, "time_s", part));
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
    for (const auto& e : run.energy_samples) t0 = std::min(t0, e.time), hosts.insert(e.host);
    for (const auto& e : run.energy_samples) {
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
    if (run.energy.contains("phases"))
      for (const auto& [phase, joules] : run.energy["phases"].items())
        if (joules.is_number()) phases.push_back({phase, joules.get<double>()});
    out += bar_plot("Energy by phase · " + run.name, phases, "J");
  }
  return out + "</div>";
}

std::string cost_section(const std::vector<RunData>& runs) {
  struct Row { const char* label; std::function<std::string(const json&)> cell; };
  auto field = [](const char* key, const char* spec) {
    return [key, spec](const json& e) { return fmt(num_at(e, {key}), spec); };
  };
  const std::vector<Row> rows = {
      {"wall time (s)", field("duration_s", "%.1f")},
      {"energy (J)", field("joules", "%.4g")},
      {"package (J)", [](const json& e) { return fmt(num_at(e, {"domains", "package", "joules"})) + " " + e["domains"]["package"].value("label", ""); }},
      {"dram (J)", [](const json& e) { return fmt(num_at(e, {"domains", "dram", "joules"})) + " " + e["domains"]["dram"].value("label", ""); }},
      {"gpu (J)", [](const json& e) { return fmt(num_at(e, {"domains", "gpu", "joules"})) + " " + e["domains"]["gpu"].value("label", ""); }},
      {"kWh × PUE", field("kwh_x_pue", "%.4g")},
      {"CO2e (kg)", field("co2e_kg", "%.3g")},
      {"carbon intensity (g/kWh)", field("carbon_g_per_kwh", "%.0f")},
      {"device-hours", field("device_hours", "%.4g")},
      {"cost (USD)", field("cost", "%.4g")},
      {"images", field("images", "%.0f")},
      {"J / image", field("joules_per_image", "%.4g")},
      {"USD / image", field("cost_per_image", "%.3g")},
      {"analytic FLOPs", field("flops", "%.3e")},
  };
  std::ostringstream s;
  s << "<table><tr><th></th>";
  for (const auto& run : runs) s << "<th>" << html_escape(run.name) << "</th>";
  s << "</tr>";
  for (const auto& row : rows) {
    s << "<tr><td>" << row.label << "</td>";
    for (const auto& run : runs) {
      std::string cell = "–";
      if (run.energy.is_object()) {
        try {
          cell = row.cell(run.energy);
        } catch (const json::exception&) {
        }
      }
      s << "<td>" << html_escape(cell) << "</td>";
    }
    s << "</tr>";
  }
  s << "</table><p class=\"meta\">Published reference: RETFound-Green trained for &lt;$100 vs $10,000 (RETFound-MEH) and "
       "$14,000 (DERETFound). Energy labels: <em>measured</em> (RAPL, NVML) or <em>estimated</em> (CPU/GPU time × TDP share).</p>";
  return s.str();
}

std::string probe_section(const std::vector<RunData>& runs) {
  std::ostringstream s;
  bool any = false;
  for (const auto& run : runs) {
    if (!run.results.is_object() || !run.results.contains("results")) continue;
    any = true;
    // (task, class) rows × model columns of median AUROC with the interval, best in bold.
    std::vector<std::string> models, rows;
    std::map<std::string, std::map<std::string, json>> table;
    std::vector<Interval> intervals;
    for (const auto& r : run.results["results"]) {
      const std::string model = r.value("model", "?");
      const std::string row = r.value("task", "?") + (r["class"].is_null() ? "" : " [" + r["class"].dump() + "]");
      if (std::find(models.begin(), models.end(), model) == models.end()) models.push_back(model);
      if (!table.count(row)) rows.push_back(row);
      table[row][model] = r;
      intervals.push_back({row, model, num_at(r, {"auroc_median"}), num_at(r, {"auroc_ci_low"}), num_at(r, {"auroc_ci_high"})});
    }
    std::map<std::string, json> comparison;
    for (const auto& c : run.results.value("comparisons", json::array()))
      comparison[c.value("task", "?") + (c["class"].is_null() ? "" : " [" + c["class"].dump() + "]")] = c;
    std::map<std::string, int> wins, ties;
    s << "<h3>" << html_escape(run.name) << "</h3><table><tr><th>task</th>";
    for (const auto& m : models) s << "<th>" << html_escape(m) << "</th>";
    s << "<th>best vs second: p</th><th>outcome</th></tr>";
    for (const auto& row : rows) {
      s << "<tr><td>" << html_escape(row) << "</td>";
      const json cmp = comparison.count(row) ? comparison[row] : json();
      for (const auto& m : models) {
        if (!table[row].count(m)) {
          s << "<td>–</td>";
          continue;
        }
        const json& r = table[row][m];
        const bool best = cmp.is_object() && cmp.value("best", "") == m;
        s << "<td>" << (best ? "<b>" : "") << fmt(num_at(r, {"auroc_median"}), "%.4f") << (best ? "</b>" : "")
          << " <span class=\"ci\">[" << fmt(num_at(r, {"auroc_ci_low"}), "%.3f") << ", " << fmt(num_at(r, {"auroc_ci_high"}), "%.3f")
          << "]</span></td>";
      }
      if (cmp.is_object()) {
        const double p = num_at(cmp, {"p_value"});
        const std::string outcome = cmp.value("outcome", "");
        s << "<td>" << (p < 1e-4 ? "***" : fmt(p, "%.4f")) << "</td><td>" << html_escape(outcome) << "</td>";
        if (outcome == "win") ++wins[cmp.value("best", "")];
        else ++ties[cmp.value("best", "")], ++ties[cmp.value("second", "")];
      } else {
        s << "<td>–</td><td>–</td>";
      }
      s << "</tr>";
    }
    s << "</table><table class=\"wins\"><tr><th>model</th><th>significant wins</th><th>ties for first</th></tr>";
    for (const auto& m : models) s << "<tr><td>" << html_escape(m) << "</td><td>" << wins[m] << "</td><td>" << ties[m] << "</td></tr>";
    s << "</table>" << interval_plot("AUROC by task · " + run.name, intervals, "AUROC");
    if (run.results.contains("errors") && !run.results["errors"].empty())
      for (const auto& e : run.results["errors"]) s << "<p class=\"note\">" << html_escape(e.is_string() ? e.get<std::string>() : e.dump()) << "</p>";
  }
  if (!any) s << "<p class=\"empty\">No probe results yet (run <code>greenfound probe --out RUN_DIR/probe</code>).</p>";
  return s.str();
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
