// Plain SVG charts for reports, no dependencies: points and lines on numeric axes (accuracy against bits per weight, a statistic by layer) and grouped bars (accuracy by level, KL by component).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "svg.hpp"

namespace qmr::report {

// One named set of points. x and y have equal length; a non-finite y is a missing point
// (a gap in the line). point_labels, when not empty, has one label per point, drawn beside it.
struct chart_series {
  std::string name;
  std::vector<double> x, y;
  std::vector<std::string> point_labels;
  bool connect = true;  // draw a line through the points in the order given
};

// A bar group's values per category; NaN: no bar.
struct bar_series {
  std::string name;
  std::vector<double> values;
};

// Titles and axis ranges; an unset range (NaN) is taken from the data, widened to round ticks.
struct chart_axes {
  std::string title, x_label, y_label;
  double x_min = NAN, x_max = NAN, y_min = NAN, y_max = NAN;
  bool y_log = false;  // log10 y axis (positive values only): quantities spanning decades, like KL
  std::vector<std::pair<double, std::string>> y_refs;  // labelled dashed horizontal lines (line charts), e.g. the unquantized model
};

namespace detail {

// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
inline const char* chart_colour(std::size_t i) {
  static constexpr std::array<const char*, 8> palette = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                         "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  return palette[i % palette.size()];
}

// Tick values covering [lo, hi] with about `want` steps of 1, 2 or 5 x 10^k.
inline std::vector<double> nice_ticks(double lo, double hi, int want = 5) {
  if (!(hi > lo)) hi = lo + 1.0;
  const double raw = (hi - lo) / std::max(1, want);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag * (1 + 1e-9)) {
      step = m * mag;
      break;
    }
  // From the last tick at or below lo to the first at or above hi (integer multiples: no drift).
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> t;
  for (double k = first; k <= last && t.size() < 64; k += 1) t.push_back(k == 0 ? 0.0 : k * step);
  return t;
}

inline std::string tick_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// The value range of the finite entries of xs (positive ones only when `positive`), or {NaN, NaN}.
inline std::pair<double, double> finite_range(const std::vector<double>& xs, bool positive = false) {
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : xs)
    if (std::isfinite(v) && (!positive || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  return std::isfinite(lo) ? std::pair<double, double>{lo, hi} : std::pair<double, double>{NAN, NAN};
}

// Plot geometry (pixels): a 560 x 300 plot area, room on the left for y ticks and label, at the
// bottom for x ticks and label, on the right for the legend.
struct frame {
  static constexpr int left = 70, top = 40, plot_w = 560, plot_h = 300, legend_w = 190, bottom = 56;
  static constexpr int width = left + plot_w + legend_w, height = top + plot_h + bottom;
};

inline std::string svg_open(const std::string& title) {
  char b[256];
  std::snprintf(b, sizeof b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
                frame::width, frame::height);
  return std::string(b) + "<text x=\"8\" y=\"20\" font-size=\"13\" font-weight=\"bold\">" + svg_escape(title) + "</text>\n";
}

// The y axis (ticks, grid lines, label) over [lo, hi] mapped by `to_y`.
template <class ToY>
std::string y_axis(const chart_axes& a, const std::vector<double>& ticks, const ToY& to_y) {
  std::string s;
  char b[256];
  for (const double t : ticks) {
    const double y = to_y(t);
    std::snprintf(b, sizeof b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", frame::left, y,
                  frame::left + frame::plot_w, y);
    s += b;
    std::snprintf(b, sizeof b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", frame::left - 6, y + 4);
    s += b + svg_escape(tick_text(t)) + "</text>\n";
  }
  std::snprintf(b, sizeof b, "<text transform=\"translate(16,%d) rotate(-90)\" text-anchor=\"middle\">", frame::top + frame::plot_h / 2);
  s += b + svg_escape(a.y_label) + "</text>\n";
  std::snprintf(b, sizeof b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", frame::left, frame::top,
                frame::plot_w, frame::plot_h);
  s += b;
  return s;
}

inline std::string legend(const std::vector<std::string>& names, bool as_bars) {
  std::string s;
  char b[256];
  for (std::size_t i = 0; i < names.size(); ++i) {
    const int x = frame::left + frame::plot_w + 14, y = frame::top + 8 + static_cast<int>(i) * 18;
    if (as_bars)
      std::snprintf(b, sizeof b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\"/>\n", x, y - 8, chart_colour(i));
    else
      std::snprintf(b, sizeof b, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>\n", x + 6, y - 3, chart_colour(i));
    s += b;
    std::snprintf(b, sizeof b, "<text x=\"%d\" y=\"%d\">", x + 18, y);
    s += b + svg_escape(names[i]) + "</text>\n";
  }
  return s;
}

// [lo, hi] of an axis: the given bounds, or the data's widened by 5% and rounded out to ticks.
inline std::pair<double, double> axis_range(double given_lo, double given_hi, std::pair<double, double> data) {
  double lo = std::isfinite(given_lo) ? given_lo : data.first, hi = std::isfinite(given_hi) ? given_hi : data.second;
  if (!std::isfinite(lo)) lo = 0;
  if (!std::isfinite(hi)) hi = lo + 1;
  if (hi <= lo) {
    const double pad = std::abs(lo) > 0 ? std::abs(lo) * 0.1 : 1.0;
    if (!std::isfinite(given_lo)) lo -= pad;
    if (!std::isfinite(given_hi)) hi += pad;
    if (hi <= lo) hi = lo + 1;
  }
  const auto t = nice_ticks(lo, hi);
  if (!std::isfinite(given_lo)) lo = std::min(lo, t.front());
  if (!std::isfinite(given_hi)) hi = std::max(hi, t.back());
  return {lo, hi};
}

}  // namespace detail

// Points (and lines) of every series on linear x and linear or log y axes, with a legend.
inline std::string line_chart_svg(const chart_axes& a, const std::vector<chart_series>& series) {
  using detail::frame;
  check(!series.empty(), "line chart '" + a.title + "': no series");
  std::vector<double> xs, ys;
  for (const auto& s : series) {
    check(s.x.size() == s.y.size(), "line chart '" + a.title + "': series '" + s.name + "' has " + std::to_string(s.x.size()) + " x and " +
                                        std::to_string(s.y.size()) + " y values");
    check(s.point_labels.empty() || s.point_labels.size() == s.x.size(),
          "line chart '" + a.title + "': series '" + s.name + "' has " + std::to_string(s.point_labels.size()) + " labels for " +
              std::to_string(s.x.size()) + " points");
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!a.y_log || s.y[i] > 0)) xs.push_back(s.x[i]), ys.push_back(s.y[i]);
  }
  for (const auto& [v, label] : a.y_refs)
    if (std::isfinite(v) && (!a.y_log || v > 0)) ys.push_back(v);
  const std::pair<double, double> x_range = detail::axis_range(a.x_min, a.x_max, detail::finite_range(xs));
  const double x0 = x_range.first, x1 = x_range.second;  // plain names: lambdas capture them (clang 14 cannot capture bindings)
  double y0 = 0, y1 = 1;
  std::vector<double> yticks;
  if (a.y_log) {
    const auto r = detail::finite_range(ys, true);
    const double lo = std::isfinite(a.y_min) && a.y_min > 0 ? a.y_min : (std::isfinite(r.first) ? r.first : 1e-3);
    const double hi = std::isfinite(a.y_max) && a.y_max > lo ? a.y_max : (std::isfinite(r.second) && r.second > lo ? r.second : lo * 10);
    y0 = std::floor(std::log10(lo));
    y1 = std::max(y0 + 1, std::ceil(std::log10(hi)));
    for (int e = static_cast<int>(y0); e <= static_cast<int>(y1); ++e) yticks.push_back(std::pow(10.0, e));  // y0, y1: whole decades
  } else {
    std::tie(y0, y1) = detail::axis_range(a.y_min, a.y_max, detail::finite_range(ys));
    for (const double t : detail::nice_ticks(y0, y1))
      if (t >= y0 - 1e-9 && t <= y1 + 1e-9) yticks.push_back(t);
  }
  const auto to_x = [&](double v) { return frame::left + (v - x0) / (x1 - x0) * frame::plot_w; };
  const auto to_y = [&](double v) {
    const double t = a.y_log ? (std::log10(v) - y0) / (y1 - y0) : (v - y0) / (y1 - y0);
    return frame::top + (1.0 - t) * frame::plot_h;
  };
  std::string s = detail::svg_open(a.title);
  s += detail::y_axis(a, yticks, to_y);
  char b[320];
  for (const double t : detail::nice_ticks(x0, x1, 8)) {
    if (t < x0 - 1e-9 || t > x1 + 1e-9) continue;
    std::snprintf(b, sizeof b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", to_x(t), frame::top + frame::plot_h + 16);
    s += b + svg_escape(detail::tick_text(t)) + "</text>\n";
  }
  std::snprintf(b, sizeof b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", frame::left + frame::plot_w / 2, frame::top + frame::plot_h + 38);
  s += b + svg_escape(a.x_label) + "</text>\n";
  for (const auto& [v, label] : a.y_refs) {
    if (!std::isfinite(v) || (a.y_log && v <= 0)) continue;
    const double y = to_y(v);
    if (y < frame::top - 0.5 || y > frame::top + frame::plot_h + 0.5) continue;
    std::snprintf(b, sizeof b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#777\" stroke-dasharray=\"5,4\"/>\n",
                  frame::left, y, frame::left + frame::plot_w, y);
    s += b;
    std::snprintf(b, sizeof b, "<text x=\"%d\" y=\"%.1f\" fill=\"#555\">", frame::left + 4, y - 4);
    s += b + svg_escape(label) + "</text>\n";
  }
  std::vector<std::string> names;
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& sr = series[k];
    names.push_back(sr.name);
    const auto visible = [&](std::size_t i) {
      return std::isfinite(sr.x[i]) && std::isfinite(sr.y[i]) && (!a.y_log || sr.y[i] > 0) && sr.x[i] >= x0 && sr.x[i] <= x1;
    };
    if (sr.connect) {
      std::string path;
      bool pen = false;
      for (std::size_t i = 0; i < sr.x.size(); ++i) {
        if (!visible(i)) {
          pen = false;
          continue;
        }
        std::snprintf(b, sizeof b, "%s%.1f,%.1f ", pen ? "L" : "M", to_x(sr.x[i]), to_y(std::clamp(sr.y[i], a.y_log ? std::pow(10.0, y0) : y0, a.y_log ? std::pow(10.0, y1) : y1)));
        path += b;
        pen = true;
      }
      if (!path.empty())
        s += std::string("<path d=\"") + path + "\" fill=\"none\" stroke=\"" + detail::chart_colour(k) + "\" stroke-width=\"1.5\"/>\n";
    }
    for (std::size_t i = 0; i < sr.x.size(); ++i) {
      if (!visible(i)) continue;
      const double px = to_x(sr.x[i]), py = to_y(std::clamp(sr.y[i], a.y_log ? std::pow(10.0, y0) : y0, a.y_log ? std::pow(10.0, y1) : y1));
      std::snprintf(b, sizeof b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px, py, detail::chart_colour(k));
      s += b;
      if (!sr.point_labels.empty() && !sr.point_labels[i].empty()) {
        std::snprintf(b, sizeof b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#333\">", px + 5, py - 5);
        s += b + svg_escape(sr.point_labels[i]) + "</text>\n";
      }
    }
  }
  s += detail::legend(names, false);
  return s + "</svg>\n";
}

// Grouped bars: one group per category, one bar per series, on a linear y axis from
// y_min (default: 0, or the data's minimum when negative).
inline std::string bar_chart_svg(const chart_axes& a, const std::vector<std::string>& categories, const std::vector<bar_series>& series) {
  using detail::frame;
  check(!categories.empty() && !series.empty(), "bar chart '" + a.title + "': no categories or no series");
  std::vector<double> all;
  for (const auto& s : series) {
    check(s.values.size() == categories.size(), "bar chart '" + a.title + "': series '" + s.name + "' has " +
                                                    std::to_string(s.values.size()) + " values for " +
                                                    std::to_string(categories.size()) + " categories");
    all.insert(all.end(), s.values.begin(), s.values.end());
  }
  auto data = detail::finite_range(all);
  if (std::isfinite(data.first)) data.first = std::min(0.0, data.first);
  const std::pair<double, double> y_range = detail::axis_range(a.y_min, a.y_max, data);
  const double y0 = y_range.first, y1 = y_range.second;
  std::vector<double> yticks;
  for (const double t : detail::nice_ticks(y0, y1))
    if (t >= y0 - 1e-9 && t <= y1 + 1e-9) yticks.push_back(t);
  const auto to_y = [&](double v) { return frame::top + (1.0 - (std::clamp(v, y0, y1) - y0) / (y1 - y0)) * frame::plot_h; };
  std::string s = detail::svg_open(a.title);
  s += detail::y_axis(a, yticks, to_y);
  const double group_w = static_cast<double>(frame::plot_w) / static_cast<double>(categories.size());
  const double bar_w = group_w * 0.8 / static_cast<double>(series.size());
  char b[320];
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const double gx = frame::left + group_w * static_cast<double>(c);
    for (std::size_t k = 0; k < series.size(); ++k) {
      const double v = series[k].values[c];
      if (!std::isfinite(v)) continue;
      const double base = to_y(std::clamp(0.0, y0, y1)), vy = to_y(v);  // bars grow from 0 (or the axis end nearest it)
      std::snprintf(b, sizeof b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
                    gx + group_w * 0.1 + bar_w * static_cast<double>(k), std::min(base, vy), std::max(1.0, bar_w - 1),
                    std::max(0.5, std::abs(base - vy)), detail::chart_colour(k));
      s += b + svg_escape(series[k].name + ", " + categories[c] + ": " + detail::tick_text(v)) + "</title></rect>\n";
    }
    std::snprintf(b, sizeof b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", gx + group_w / 2, frame::top + frame::plot_h + 16);
    s += b + svg_escape(categories[c]) + "</text>\n";
  }
  std::snprintf(b, sizeof b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", frame::left + frame::plot_w / 2, frame::top + frame::plot_h + 38);
  s += b + svg_escape(a.x_label) + "</text>\n";
  std::vector<std::string> names;
  names.reserve(series.size());
  for (const auto& sr : series) names.push_back(sr.name);
  s += detail::legend(names, true);
  return s + "</svg>\n";
}

}  // namespace qmr::report
