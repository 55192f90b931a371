#pragma once
// Inline SVG plots for the HTML report, drawn here so the page needs no script, font or
// network (a plotting library would bring a JS runtime into a file meant to be archived).
// Every plot is <svg class="plot" data-points="N">, N (> 0) the data points it drew; a chart
// with no data yet (a run in progress) is a one-line note instead.
#include <string>
#include <vector>

namespace gf::launcher {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct Axis {
  std::string label;
  bool log = false;
};

std::string line_plot(const std::string& title, const std::vector<Series>& series, const Axis& x, const Axis& y);

struct Bar {
  std::string label;
  double value = 0;
};
std::string bar_plot(const std::string& title, const std::vector<Bar>& bars, const std::string& unit);

// One row per group (a probe task/class), one dot with an error bar per series (a model).
struct Interval {
  std::string group, series;
  double mid = 0, low = 0, high = 0;
};
std::string interval_plot(const std::string& title, const std::vector<Interval>& intervals, const std::string& unit);

// Quality against cost: one dot with a vertical error bar per point (x on a log axis), the
// points on the Pareto frontier (no cheaper point is as good) ringed and joined, and
// references drawn as labelled vertical lines (off-scale ones pinned to the edge with an arrow).
struct FrontierPoint {
  std::string label;
  double x = 0, y = 0, low = 0, high = 0;
  bool on_frontier = false;
};
struct Reference {
  std::string label;
  double x = 0;
};
std::string frontier_plot(const std::string& title, const std::vector<FrontierPoint>& points, const Axis& x,
                          const std::string& y_label, const std::vector<Reference>& references);

std::string series_color(size_t i);
std::string html_escape(const std::string& text);

// The CSS the plots' classes need (frame, grid, tick, axis, title, legend, empty note).
const char* plot_style();
// Plots stacked top to bottom as one standalone SVG file (with the namespace and the style),
// for a README or a slide; a plot that is a no-data note is left out.
std::string standalone_svg(const std::vector<std::string>& plots);

}  // namespace gf::launcher
