// A report as a list of blocks (headings, paragraphs, bullet lists, tables, SVG figures), rendered to Markdown (figures as linked files) or to one self-contained HTML page (figures inline).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "svg.hpp"

namespace qmr::report {

struct table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each as long as the header
};

struct figure {
  std::string file;     // where the Markdown links it, relative to the report (e.g. "charts/accuracy.svg")
  std::string svg;      // the whole <svg> element
  std::string caption;
};

struct block {
  enum class kind { heading, paragraph, bullets, table, figure };
  kind k = kind::paragraph;
  int level = 2;                   // heading level (1-4)
  std::string text;                // heading, paragraph
  std::vector<std::string> items;  // bullets
  report::table t;
  report::figure f;
};

class document {
 public:
  explicit document(std::string title) : title_(std::move(title)) {}

  void heading(std::string text, int level = 2) {
    check(level >= 1 && level <= 4, "report heading '" + text + "': level " + std::to_string(level) + " is not 1-4");
    block b;
    b.k = block::kind::heading;
    b.level = level;
    b.text = std::move(text);
    blocks_.push_back(std::move(b));
  }
  void paragraph(std::string text) {
    block b;
    b.text = std::move(text);
    blocks_.push_back(std::move(b));
  }
  void bullets(std::vector<std::string> items) {
    if (items.empty()) return;
    block b;
    b.k = block::kind::bullets;
    b.items = std::move(items);
    blocks_.push_back(std::move(b));
  }
  void add_table(report::table t) {
    for (std::size_t r = 0; r < t.rows.size(); ++r)
      check(t.rows[r].size() == t.header.size(), "report table row " + std::to_string(r) + " has " + std::to_string(t.rows[r].size()) +
                                                     " cells for " + std::to_string(t.header.size()) + " columns");
    block b;
    b.k = block::kind::table;
    b.t = std::move(t);
    blocks_.push_back(std::move(b));
  }
  void add_figure(report::figure f) {
    check(!f.file.empty() && f.svg.rfind("<svg", 0) == 0, "report figure '" + f.caption + "': needs a file name and an <svg> element");
    block b;
    b.k = block::kind::figure;
    b.f = std::move(f);
    blocks_.push_back(std::move(b));
  }

  // Another document's blocks after this one's (its title is dropped).
  void append(const document& other) { blocks_.insert(blocks_.end(), other.blocks_.begin(), other.blocks_.end()); }

  const std::string& title() const { return title_; }
  const std::vector<block>& blocks() const { return blocks_; }
  std::vector<const figure*> figures() const {
    std::vector<const figure*> out;
    for (const auto& b : blocks_)
      if (b.k == block::kind::figure) out.push_back(&b.f);
    return out;
  }

 private:
  std::string title_;
  std::vector<block> blocks_;
};

namespace detail {
// A Markdown table cell: pipes escaped, line breaks flattened.
inline std::string md_cell(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}
}  // namespace detail

inline std::string to_markdown(const document& d) {
  std::string s = "# " + d.title() + "\n";
  for (const auto& b : d.blocks()) {
    s += '\n';
    switch (b.k) {
      case block::kind::heading: s += std::string(static_cast<std::size_t>(b.level), '#') + ' ' + b.text + '\n'; break;
      case block::kind::paragraph: s += b.text + '\n'; break;
      case block::kind::bullets:
        for (const auto& i : b.items) s += "- " + i + '\n';
        break;
      case block::kind::table: {
        s += '|';
        for (const auto& h : b.t.header) s += ' ' + detail::md_cell(h) + " |";
        s += "\n|";
        for (std::size_t i = 0; i < b.t.header.size(); ++i) s += "---|";
        s += '\n';
        for (const auto& row : b.t.rows) {
          s += '|';
          for (const auto& c : row) s += ' ' + detail::md_cell(c) + " |";
          s += '\n';
        }
        break;
      }
      case block::kind::figure: s += "![" + detail::md_cell(b.f.caption) + "](" + b.f.file + ")\n\n*" + b.f.caption + "*\n"; break;
    }
  }
  return s;
}

// One HTML page with the figures' SVG inline (nothing else to ship), escaped text.
inline std::string to_html(const document& d) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + svg_escape(d.title()) +
      "</title>\n<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
      "td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}figcaption{color:#555;font-size:0.9em}</style>\n"
      "</head><body>\n<h1>" +
      svg_escape(d.title()) + "</h1>\n";
  for (const auto& b : d.blocks()) {
    switch (b.k) {
      case block::kind::heading: {
        const std::string tag = "h" + std::to_string(b.level);
        s += '<';
        s += tag;
        s += '>';
        s += svg_escape(b.text);
        s += "</";
        s += tag;
        s += ">\n";
        break;
      }
      case block::kind::paragraph: s += "<p>" + svg_escape(b.text) + "</p>\n"; break;
      case block::kind::bullets:
        s += "<ul>\n";
        for (const auto& i : b.items) s += "<li>" + svg_escape(i) + "</li>\n";
        s += "</ul>\n";
        break;
      case block::kind::table:
        s += "<table>\n<tr>";
        for (const auto& h : b.t.header) s += "<th>" + svg_escape(h) + "</th>";
        s += "</tr>\n";
        for (const auto& row : b.t.rows) {
          s += "<tr>";
          for (const auto& c : row) s += "<td>" + svg_escape(c) + "</td>";
          s += "</tr>\n";
        }
        s += "</table>\n";
        break;
      case block::kind::figure: s += "<figure>\n" + b.f.svg + "<figcaption>" + svg_escape(b.f.caption) + "</figcaption>\n</figure>\n"; break;
    }
  }
  return s + "</body></html>\n";
}

}  // namespace qmr::report
