#include "launcher/report_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

namespace gf::launcher {

namespace {

constexpr double kWidth = 640, kHeight = 300;
constexpr double kLeft = 64, kRight = 150, kTop = 34, kBottom = 44;  // right margin holds the legend

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e5)) std::snprintf(buf, sizeof(buf), "%.1e", v);
  else std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

// Round tick steps (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

std::string open_svg(const std::string& title, size_t points, double height = kHeight) {
  std::ostringstream s;
  s << "<svg class=\"plot\" data-points=\"" << points << "\" viewBox=\"0 0 " << kWidth << ' ' << num(height)
    << "\" width=\"" << kWidth << "\" height=\"" << num(height) << "\" role=\"img\" aria-label=\"" << html_escape(title)
    << "\"><title>" << html_escape(title) << "</title><text class=\"ptitle\" x=\"" << kLeft << "\" y=\"20\">"
    << html_escape(title) << "</text>";
  return s.str();
}

// A chart with nothing to draw is one line of text, not an empty frame.
std::string no_data(const std::string& title, const std::string& why) {
  return "<p class=\"empty\">" + html_escape(title) + ": " + why + "</p>";
}

std::string legend(const std::vector<std::string>& names) {
  std::ostringstream s;
  for (size_t i = 0; i < names.size(); ++i) {
    const double y = kTop + 8 + 18.0 * i;
    s << "<rect x=\"" << kWidth - kRight + 14 << "\" y=\"" << num(y - 8) << "\" width=\"10\" height=\"10\" fill=\""
      << series_color(i) << "\"/><text class=\"legend\" x=\"" << kWidth - kRight + 30 << "\" y=\"" << num(y + 1) << "\">"
      << html_escape(names[i].size() > 20 ? names[i].substr(0, 19) + "…" : names[i]) << "</text>";
  }
  return s.str();
}

}  // namespace

const char* plot_style() {
  return "svg.plot{background:#fff;border:1px solid #e3e8e3;border-radius:6px}.frame{fill:none;stroke:#9aa89d}.grid{stroke:#eef1ee}\n"
         ".tick{font-size:11px;fill:#4a5a4f}.axis{font-size:12px;fill:#2f3d33}.ptitle{font-size:13px;font-weight:600;fill:#1d2a22}\n"
         ".legend{font-size:11px;fill:#2f3d33}.empty{color:#8a968d;fill:#8a968d;font-style:italic}\n";
}

std::string standalone_svg(const std::vector<std::string>& plots) {
  std::ostringstream body;
  double y = 0;
  for (const auto& plot : plots) {
    if (plot.rfind("<svg", 0) != 0) continue;
    // Each plot keeps its own viewBox; placed at (0, y) inside the outer canvas.
    const auto height_at = plot.find("height=\"") + 8;
    const double height = std::stod(plot.substr(height_at, plot.find('"', height_at) - height_at));
    body << "<svg x=\"0\" y=\"" << num(y) << "\"" << plot.substr(4) << "\n";
    y += height + 10;
  }
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << num(y) << "\" viewBox=\"0 0 "
      << kWidth << ' ' << num(y) << "\" font-family=\"system-ui,-apple-system,Segoe UI,sans-serif\">\n<style>\n"
      << plot_style() << "</style>\n" << body.str() << "</svg>\n";
  return out.str();
}

std::string series_color(size_t i) {
  static const char* kColors[] = {"#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828", "#00838f", "#9e9d24", "#4e342e"};
  return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string line_plot(const std::string& title, const std::vector<Series>& series, const Axis& x_axis, const Axis& y_axis) {
  auto fy = [&](double v) { return y_axis.log ? std::log10(v) : v; };
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  size_t points = 0;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (y_axis.log && s.y[i] <= 0)) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, fy(s.y[i])), y1 = std::max(y1, fy(s.y[i]));
      ++points;
    }
  if (points == 0) return no_data(title, "no data yet");
  std::ostringstream out;
  out << open_svg(title, points);
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= std::max(1e-12, std::fabs(y0) * 0.05), y1 += std::max(1e-12, std::fabs(y1) * 0.05);
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double v) { return kLeft + (v - x0) / (x1 - x0) * pw; };
  auto py = [&](double v) { return kTop + (1 - (fy(v) - y0) / (y1 - y0)) * ph; };

  out << "<rect class=\"frame\" x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph << "\"/>";
  for (double t : nice_ticks(x0, x1))
    out << "<line class=\"grid\" x1=\"" << num(px(t)) << "\" x2=\"" << num(px(t)) << "\" y1=\"" << kTop << "\" y2=\""
        << kTop + ph << "\"/><text class=\"tick\" x=\"" << num(px(t)) << "\" y=\"" << kTop + ph + 16
        << "\" text-anchor=\"middle\">" << tick_label(t) << "</text>";
  for (double t : nice_ticks(y0, y1)) {
    const double ypix = kTop + (1 - (t - y0) / (y1 - y0)) * ph;
    out << "<line class=\"grid\" x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << num(ypix) << "\" y2=\"" << num(ypix)
        << "\"/><text class=\"tick\" x=\"" << kLeft - 6 << "\" y=\"" << num(ypix + 4) << "\" text-anchor=\"end\">"
        << tick_label(y_axis.log ? std::pow(10.0, t) : t) << "</text>";
  }
  out << "<text class=\"axis\" x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 8 << "\" text-anchor=\"middle\">"
      << html_escape(x_axis.label) << "</text><text class=\"axis\" transform=\"translate(14," << kTop + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << html_escape(y_axis.label + (y_axis.log ? " (log)" : "")) << "</text>";

  std::vector<std::string> names;
  for (size_t si = 0; si < series.size(); ++si) {
    const auto& s = series[si];
    names.push_back(s.name);
    std::ostringstream pts;
    size_t n = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (y_axis.log && s.y[i] <= 0)) continue;
      pts << num(px(s.x[i])) << ',' << num(py(s.y[i])) << ' ';
      ++n;
    }
    out << "<polyline class=\"series\" data-n=\"" << n << "\" fill=\"none\" stroke=\"" << series_color(si)
        << "\" stroke-width=\"1.8\" points=\"" << pts.str() << "\"/>";
    if (n <= 60)  // markers only where they stay readable
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]) && !(y_axis.log && s.y[i] <= 0))
          out << "<circle class=\"pt\" r=\"2.6\" fill=\"" << series_color(si) << "\" cx=\"" << num(px(s.x[i])) << "\" cy=\""
              << num(py(s.y[i])) << "\"/>";
  }
  out << legend(names) << "</svg>";
  return out.str();
}

std::string bar_plot(const std::string& title, const std::vector<Bar>& bars, const std::string& unit) {
  double vmax = 0;
  for (const auto& b : bars) vmax = std::max(vmax, b.value);
  if (bars.empty() || vmax <= 0) return no_data(title, "no data yet");
  const double row = 24, height = kTop + row * bars.size() + 16;
  std::ostringstream out;
  out << open_svg(title, bars.size(), height);
  const double left = 170, width = kWidth - left - 120;
  for (size_t i = 0; i < bars.size(); ++i) {
    const double y = kTop + row * i;
    const double w = bars[i].value / vmax * width;
    out << "<text class=\"tick\" x=\"" << left - 8 << "\" y=\"" << num(y + 15) << "\" text-anchor=\"end\">" << html_escape(bars[i].label)
        << "</text><rect class=\"bar\" x=\"" << left << "\" y=\"" << num(y + 4) << "\" width=\"" << num(std::max(w, 1.0))
        << "\" height=\"" << row - 8 << "\" fill=\"" << series_color(i) << "\"/><text class=\"tick\" x=\"" << num(left + w + 6)
        << "\" y=\"" << num(y + 15) << "\">" << tick_label(bars[i].value) << ' ' << html_escape(unit) << "</text>";
  }
  out << "</svg>";
  return out.str();
}

std::string interval_plot(const std::string& title, const std::vector<Interval>& intervals, const std::string& unit) {
  if (intervals.empty()) return no_data(title, "no probe results yet");
  std::vector<std::string> groups, names;
  std::map<std::string, size_t> group_index, series_index;
  double lo = 1, hi = 0;
  for (const auto& iv : intervals) {
    if (!group_index.count(iv.group)) group_index[iv.group] = groups.size(), groups.push_back(iv.group);
    if (!series_index.count(iv.series)) series_index[iv.series] = names.size(), names.push_back(iv.series);
    lo = std::min(lo, iv.low), hi = std::max(hi, iv.high);
  }
  const double row = 14.0 * names.size() + 10;
  const double height = kTop + row * groups.size() + 40;
  std::ostringstream out;
  out << open_svg(title, intervals.size(), height);
  lo = std::max(0.0, std::floor(lo * 20) / 20), hi = std::min(1.0, std::ceil(hi * 20) / 20);
  if (hi <= lo) hi = lo + 0.05;
  const double left = 190, width = kWidth - left - kRight;
  auto px = [&](double v) { return left + (v - lo) / (hi - lo) * width; };
  const double bottom = kTop + row * groups.size();
  for (double t : nice_ticks(lo, hi))
    out << "<line class=\"grid\" x1=\"" << num(px(t)) << "\" x2=\"" << num(px(t)) << "\" y1=\"" << kTop << "\" y2=\"" << num(bottom)
        << "\"/><text class=\"tick\" x=\"" << num(px(t)) << "\" y=\"" << num(bottom + 16) << "\" text-anchor=\"middle\">"
        << tick_label(t) << "</text>";
  out << "<text class=\"axis\" x=\"" << num(left + width / 2) << "\" y=\"" << num(bottom + 34) << "\" text-anchor=\"middle\">"
      << html_escape(unit) << " (median, 95% bootstrap interval)</text>";
  for (size_t g = 0; g < groups.size(); ++g)
    out << "<text class=\"tick\" x=\"" << left - 8 << "\" y=\"" << num(kTop + row * g + row / 2 + 4) << "\" text-anchor=\"end\">"
        << html_escape(groups[g]) << "</text>";
  for (const auto& iv : intervals) {
    const size_t g = group_index[iv.group], s = series_index[iv.series];
    const double y = kTop + row * g + 8 + 14.0 * s;
    const std::string c = series_color(s);
    out << "<line class=\"err\" stroke=\"" << c << "\" stroke-width=\"2\" x1=\"" << num(px(iv.low)) << "\" x2=\"" << num(px(iv.high))
        << "\" y1=\"" << num(y) << "\" y2=\"" << num(y) << "\"/><circle class=\"pt\" r=\"3.5\" fill=\"" << c << "\" cx=\""
        << num(px(iv.mid)) << "\" cy=\"" << num(y) << "\"/>";
  }
  out << legend(names) << "</svg>";
  return out.str();
}

std::string frontier_plot(const std::string& title, const std::vector<FrontierPoint>& points, const Axis& x_axis,
                          const std::string& y_label, const std::vector<Reference>& references) {
  std::vector<const FrontierPoint*> shown;
  for (const auto& p : points)
    if (std::isfinite(p.x) && p.x > 0 && std::isfinite(p.y)) shown.push_back(&p);
  if (shown.empty()) return no_data(title, "no finished run with this measure yet");
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto* p : shown) {
    x0 = std::min(x0, std::log10(p->x)), x1 = std::max(x1, std::log10(p->x));
    y0 = std::min({y0, p->y, std::isfinite(p->low) ? p->low : p->y}), y1 = std::max({y1, p->y, std::isfinite(p->high) ? p->high : p->y});
  }
  x0 = std::floor(x0 - 0.15), x1 = std::ceil(x1 + 0.15);
  if (y1 - y0 < 0.02) y0 -= 0.01, y1 += 0.01;
  const double pad = (y1 - y0) * 0.06;
  y0 -= pad, y1 += pad;
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double v) { return kLeft + (std::log10(v) - x0) / (x1 - x0) * pw; };
  auto py = [&](double v) { return kTop + (1 - (v - y0) / (y1 - y0)) * ph; };
  std::ostringstream out;
  out << open_svg(title, shown.size());
  out << "<rect class=\"frame\" x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph << "\"/>";
  for (double t = x0; t <= x1 + 1e-9; t += 1)
    out << "<line class=\"grid\" x1=\"" << num(px(std::pow(10.0, t))) << "\" x2=\"" << num(px(std::pow(10.0, t))) << "\" y1=\"" << kTop
        << "\" y2=\"" << kTop + ph << "\"/><text class=\"tick\" x=\"" << num(px(std::pow(10.0, t))) << "\" y=\"" << kTop + ph + 16
        << "\" text-anchor=\"middle\">" << tick_label(std::pow(10.0, t)) << "</text>";
  for (double t : nice_ticks(y0, y1))
    out << "<line class=\"grid\" x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << num(py(t)) << "\" y2=\"" << num(py(t))
        << "\"/><text class=\"tick\" x=\"" << kLeft - 6 << "\" y=\"" << num(py(t) + 4) << "\" text-anchor=\"end\">" << tick_label(t)
        << "</text>";
  out << "<text class=\"axis\" x=\"" << kLeft + pw / 2 << "\" y=\"" << kHeight - 8 << "\" text-anchor=\"middle\">"
      << html_escape(x_axis.label + " (log)") << "</text><text class=\"axis\" transform=\"translate(14," << kTop + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << html_escape(y_label) << "</text>";
  for (size_t i = 0; i < references.size(); ++i) {
    const double lx = std::log10(references[i].x);
    const bool off = lx > x1 || lx < x0;
    const double xp = off ? (lx > x1 ? kLeft + pw - 2 : kLeft + 2) : px(references[i].x);
    const double ty = kTop + 12 + 12.0 * i;
    out << "<line class=\"ref\" stroke=\"#8d6e63\" stroke-dasharray=\"4 3\" x1=\"" << num(xp) << "\" x2=\"" << num(xp) << "\" y1=\""
        << kTop << "\" y2=\"" << kTop + ph << "\"/><text class=\"tick\" fill=\"#6d4c41\" x=\"" << num(xp - 4) << "\" y=\"" << num(ty)
        << "\" text-anchor=\"end\">" << html_escape(references[i].label) << (off ? (lx > x1 ? " →" : " ←") : "") << "</text>";
  }
  std::vector<const FrontierPoint*> frontier;
  for (const auto* p : shown)
    if (p->on_frontier) frontier.push_back(p);
  std::sort(frontier.begin(), frontier.end(), [](const auto* a, const auto* b) { return a->x < b->x; });
  std::ostringstream line;
  for (const auto* p : frontier) line << num(px(p->x)) << ',' << num(py(p->y)) << ' ';
  out << "<polyline class=\"frontier\" data-n=\"" << frontier.size() << "\" fill=\"none\" stroke=\"#2e7d32\" stroke-width=\"1.5\" points=\""
      << line.str() << "\"/>";
  for (size_t i = 0; i < shown.size(); ++i) {
    const auto& p = *shown[i];
    const std::string c = series_color(i);
    if (std::isfinite(p.low) && std::isfinite(p.high))
      out << "<line class=\"err\" stroke=\"" << c << "\" stroke-width=\"1.5\" x1=\"" << num(px(p.x)) << "\" x2=\"" << num(px(p.x))
          << "\" y1=\"" << num(py(p.low)) << "\" y2=\"" << num(py(p.high)) << "\"/>";
    out << "<circle class=\"pt\" r=\"3.5\" fill=\"" << c << "\" cx=\"" << num(px(p.x)) << "\" cy=\"" << num(py(p.y)) << "\"><title>"
        << html_escape(p.label) << "</title></circle>";
    if (p.on_frontier)
      out << "<circle class=\"on-frontier\" r=\"6.5\" fill=\"none\" stroke=\"#1d2a22\" cx=\"" << num(px(p.x)) << "\" cy=\""
          << num(py(p.y)) << "\"/>";
  }
  std::vector<std::string> names;
  for (const auto* p : shown) names.push_back(p->label);
  out << legend(names) << "</svg>";
  return out.str();
}

}  // namespace gf::launcher
