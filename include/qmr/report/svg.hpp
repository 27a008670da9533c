// Plain SVG plots for reports, no dependencies: a labelled heatmap (e.g. quantization sensitivity by layer and component).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace qmr::report {

// Text with &, <, > and quotes escaped for SVG.
inline std::string svg_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// A heatmap of values [rows][cols] (row-major; NaN: no value, drawn grey), each cell coloured on
// a white -> dark red scale and labelled with its value. log_scale: colours by log10 of the
// value over [min, max] of the positive values (quantities spanning decades, like KL).
inline std::string heatmap_svg(const std::string& title, const std::vector<std::string>& row_labels,
                               const std::vector<std::string>& col_labels, const std::vector<double>& values,
                               bool log_scale, const char* value_format = "%.3g") {
  const std::size_t R = row_labels.size(), C = col_labels.size();
  check(R > 0 && C > 0 && values.size() == R * C, "heatmap: " + std::to_string(values.size()) + " values for " +
                                                       std::to_string(R) + " rows x " + std::to_string(C) + " columns");
  // Layout (pixels): cells 64 x 22, a 110-pixel label column, a title band and a header row.
  constexpr int cell_w = 64, cell_h = 22, label_w = 110, top = 48;
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : values)
    if (std::isfinite(v) && (!log_scale || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  const auto shade = [&](double v) {  // 0 (white) .. 1 (dark red)
    if (!std::isfinite(lo) || hi <= lo) return 0.5;
    const double t = log_scale ? (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return std::clamp(t, 0.0, 1.0);
  };
  const int width = label_w + static_cast<int>(C) * cell_w + 10, height = top + static_cast<int>(R) * cell_h + 30;
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n",
                width, height);
  s += buf;
  s += "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">" + svg_escape(title) + "</text>\n";
  for (std::size_t c = 0; c < C; ++c) {
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", label_w + static_cast<int>(c) * cell_w + cell_w / 2,
                  top - 6);
    s += buf + svg_escape(col_labels[c]) + "</text>\n";
  }
  for (std::size_t r = 0; r < R; ++r) {
    const int y = top + static_cast<int>(r) * cell_h;
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 6, y + cell_h / 2 + 4);
    s += buf + svg_escape(row_labels[r]) + "</text>\n";
    for (std::size_t c = 0; c < C; ++c) {
      const double v = values[r * C + c];
      const int x = label_w + static_cast<int>(c) * cell_w;
      if (!std::isfinite(v)) {
        std::snprintf(buf, sizeof buf, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#ddd\" stroke=\"#fff\"/>\n", x, y, cell_w,
                      cell_h);
        s += buf;
        continue;
      }
      const double t = shade(v);
      // white (255, 255, 255) to dark red (140, 0, 0)
      const int red = static_cast<int>(std::lround(255 - 115 * t)), gb = static_cast<int>(std::lround(255 * (1 - t)));
      std::snprintf(buf, sizeof buf, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"/>\n", x, y,
                    cell_w, cell_h, red, gb, gb);
      s += buf;
      char value[64];
      std::snprintf(value, sizeof value, value_format, v);
      std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">", x + cell_w / 2, y + cell_h / 2 + 4,
                    t > 0.55 ? "#fff" : "#000");
      s += buf + svg_escape(value) + "</text>\n";
    }
  }
  std::snprintf(buf, sizeof buf, "<text x=\"8\" y=\"%d\" fill=\"#555\">", height - 10);
  s += buf + svg_escape(std::string(log_scale ? "colour: log scale" : "colour: linear scale") + " from the smallest to the largest value") +
       "</text>\n</svg>\n";
  return s;
}

}  // namespace qmr::report
