// A quantization study's report from its results files (qmr eval, qmr sensitivity, qmr stats): what breaks first — levels, operation types, layers, components — with paired tests, charts and the findings in words.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../probe/activation_stats.hpp"
#include "charts.hpp"
#include "document.hpp"
#include "eval_results.hpp"

namespace qmr::report {

// One unit of a `qmr sensitivity --out` file.
struct sensitivity_unit {
  std::string format, unit, kind, component;
  std::string context;  // measured over every layer linear at this format (qmr sensitivity --raise); empty: over the stored model
  int layer = -1;
  double kl = NAN, kl_max = NAN, top1 = NAN, verbatim = NAN;
};

struct sensitivity_results {
  std::string file;
  double reference_verbatim = NAN;  // answers the unquantized model reproduces verbatim
  std::vector<sensitivity_unit> units;
};

// One measuring point of a `qmr stats --out` file, and one layer's attention.
struct stat_point {
  int layer = 0;
  std::string point;  // component name (attn_norm, attn_out, mlp_norm, mlp_act, layer_output)
  double rms = NAN, max_abs = NAN, kurtosis = NAN, a8_error = NAN, a4_error = NAN;
  std::int64_t outlier_channels = 0, channels = 0;
};
struct attention_point {
  int layer = 0;
  double entropy = NAN, first_token_mass = NAN;
};
struct stats_results {
  std::string file;
  std::vector<stat_point> points;
  std::vector<attention_point> attention;
};

namespace detail {

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char b[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(b, sizeof b, f, ap);
  va_end(ap);
  return b;
}

inline double number_field(const nlohmann::json& o, const char* key, const std::string& file, const std::string& where) {
  check(o.contains(key) && o[key].is_number(), "missing or not a number", in_file(file, "", where + key));
  return o[key].get<double>();
}
inline std::string string_field(const nlohmann::json& o, const char* key, const std::string& file, const std::string& where) {
  check(o.contains(key) && o[key].is_string(), "missing or not a string", in_file(file, "", where + key));
  return o[key].get<std::string>();
}

inline std::string pct(double a) { return std::isfinite(a) ? fmt("%.1f", 100.0 * a) : "-"; }
inline std::string bits_text(double b) { return std::isfinite(b) ? fmt("%.2f", b) : "-"; }
inline std::string p_text(double p) { return p < 1e-4 ? fmt("%.1e", p) : fmt("%.2g", p); }

// "the component's friendly name" for a stats point: what the probe prints.
inline std::string point_label(const std::string& component) {
  for (const model::component c : probe::stat_points)
    if (component == model::component_name(c)) return probe::stat_point_name(c);
  return component;
}

}  // namespace detail

inline sensitivity_results parse_sensitivity(const nlohmann::json& j, const std::string& file) {
  using detail::number_field, detail::string_field;
  check(j.is_object() && j.contains("units") && j["units"].is_array(), "not a qmr sensitivity results object (no 'units' array)",
        in_file(file, "", "units"));
  sensitivity_results r;
  r.file = file;
  if (j.contains("reference") && j["reference"].is_object() && j["reference"].contains("verbatim") && j["reference"]["verbatim"].is_number())
    r.reference_verbatim = j["reference"]["verbatim"].get<double>();
  for (std::size_t i = 0; i < j["units"].size(); ++i) {
    const auto& u = j["units"][i];
    const std::string at = "units[" + std::to_string(i) + "].";
    check(u.is_object(), "not an object", in_file(file, "", at.substr(0, at.size() - 1)));
    sensitivity_unit s;
    s.format = string_field(u, "format", file, at);
    s.unit = string_field(u, "unit", file, at);
    s.kind = string_field(u, "kind", file, at);
    check(s.kind == "linear" || s.kind == "layer" || s.kind == "component" || s.kind == "all",
          "'" + s.kind + "' is not linear, layer, component or all", in_file(file, "", at + "kind"));
    s.component = u.value("component", std::string());
    if (u.contains("context")) {
      check(u["context"].is_string(), "not a string", in_file(file, "", at + "context"));
      s.context = u["context"].get<std::string>();
    }
    s.layer = u.contains("layer") && u["layer"].is_number_integer() ? u["layer"].get<int>() : -1;
    s.kl = number_field(u, "kl", file, at);
    s.kl_max = number_field(u, "kl_max", file, at);
    s.top1 = number_field(u, "top1", file, at);
    s.verbatim = number_field(u, "verbatim", file, at);
    r.units.push_back(std::move(s));
  }
  return r;
}

inline stats_results parse_stats(const nlohmann::json& j, const std::string& file) {
  using detail::number_field;
  check(j.is_object() && j.contains("points") && j["points"].is_array(), "not a qmr stats results object (no 'points' array)",
        in_file(file, "", "points"));
  stats_results r;
  r.file = file;
  for (std::size_t i = 0; i < j["points"].size(); ++i) {
    const auto& p = j["points"][i];
    const std::string at = "points[" + std::to_string(i) + "].";
    check(p.is_object(), "not an object", in_file(file, "", at.substr(0, at.size() - 1)));
    stat_point s;
    s.layer = static_cast<int>(number_field(p, "layer", file, at));
    s.point = detail::string_field(p, "point", file, at);
    s.rms = number_field(p, "rms", file, at);
    s.max_abs = number_field(p, "max_abs", file, at);
    s.kurtosis = number_field(p, "kurtosis", file, at);
    s.a8_error = number_field(p, "a8_error", file, at);
    s.a4_error = number_field(p, "a4_error", file, at);
    s.outlier_channels = static_cast<std::int64_t>(number_field(p, "outlier_channels", file, at));
    s.channels = static_cast<std::int64_t>(number_field(p, "channels", file, at));
    r.points.push_back(std::move(s));
  }
  if (j.contains("attention") && j["attention"].is_array())
    for (std::size_t i = 0; i < j["attention"].size(); ++i) {
      const auto& a = j["attention"][i];
      const std::string at = "attention[" + std::to_string(i) + "].";
      attention_point p;
      p.layer = static_cast<int>(number_field(a, "layer", file, at));
      p.entropy = number_field(a, "entropy", file, at);
      p.first_token_mass = number_field(a, "first_token_mass", file, at);
      r.attention.push_back(p);
    }
  return r;
}

// What a study report is made of: eval results files (each one problem set, with its runs),
// and optionally a sensitivity and a statistics file. `reference` names the run the others
// are compared with (default "stored": the checkpoint as shipped).
struct study_inputs {
  std::string title = "Quantization study";
  std::vector<std::vector<eval_run>> evals;
  std::optional<sensitivity_results> sensitivity;
  std::optional<stats_results> stats;
  std::string reference = "stored";
  std::string chart_dir = "charts";  // figures' files, relative to the report
};

namespace detail {

inline const eval_run* find_run(const std::vector<eval_run>& runs, const std::string& weights) {
  for (const auto& r : runs)
    if (r.weights == weights) return &r;
  return nullptr;
}

inline std::string problem_set_name(const std::vector<eval_run>& runs) {
  const eval_run& r = runs.front();
  std::string s = r.task.empty() ? "problems" : r.task;
  if (r.seed >= 0) s += fmt(" (seed %lld)", static_cast<long long>(r.seed));
  return s + ", " + std::to_string(r.items.size()) + " problems: " + r.file;
}

inline std::string short_file(const std::string& f) {
  const auto slash = f.find_last_of('/');
  return slash == std::string::npos ? f : f.substr(slash + 1);
}

// " (none significantly, p >= 0.05)" or " (significantly at L4, L5)".
inline std::string significantly_text(const std::vector<std::string>& significant) {
  if (significant.empty()) return " (none significantly: each p >= 0.05)";
  std::string s = " (significantly at ";
  for (std::size_t i = 0; i < significant.size(); ++i) s += (i ? ", " : "") + significant[i];
  return s + ")";
}

// The eval sections of one problem set; adds its findings.
inline void eval_sections(document& d, const study_inputs& in, std::size_t set, std::vector<std::string>& findings) {
  const std::vector<eval_run>& runs = in.evals[set];
  const std::string tag = std::to_string(set + 1);
  d.heading("Problem set " + tag + ": " + problem_set_name(runs));
  // The reference: the named run, else (a set of plans and formats only) the one with the most bits.
  const eval_run* ref = find_run(runs, in.reference);
  if (!ref && runs.size() > 1) {
    for (const auto& r : runs)
      if (std::isfinite(r.bits_per_weight) && (!ref || r.bits_per_weight > ref->bits_per_weight)) ref = &r;
    if (ref)
      d.paragraph("This set has no '" + in.reference + "' run: every configuration is compared with " + ref->label() +
                  ", the one with the most bits.");
  }
  const std::string ref_name = ref ? ref->label() : in.reference;

  // Accuracy against bits, with paired comparisons to the reference.
  table t;
  t.header = {"weights", "bits/weight", "accuracy % [95% CI]"};
  if (ref) t.header.push_back("vs " + ref_name + ": points (only " + ref_name + " / only this), p");
  const auto levels = runs.front().by_level();
  for (const auto& [l, c] : levels) t.header.push_back("L" + std::to_string(l));
  std::vector<const eval_run*> by_bits;
  by_bits.reserve(runs.size());
  for (const auto& r : runs) by_bits.push_back(&r);
  std::stable_sort(by_bits.begin(), by_bits.end(), [](const eval_run* a, const eval_run* b) {
    const double x = std::isfinite(a->bits_per_weight) ? a->bits_per_weight : 1e9, y = std::isfinite(b->bits_per_weight) ? b->bits_per_weight : 1e9;
    return x > y;
  });
  const eval_run* lowest_held = nullptr;  // fewest bits without a significant loss
  const eval_run* worst = nullptr;
  paired_result worst_pr;
  for (const eval_run* r : by_bits) {
    const eval::group_stats o = r->overall();
    const auto [lo, hi] = o.ci95();
    std::vector<std::string> row = {r->label(), bits_text(r->bits_per_weight), pct(o.accuracy()) + " [" + pct(lo) + ", " + pct(hi) + "]"};
    if (ref) {
      if (r == ref) {
        row.push_back("-");
      } else {
        const paired_result pr = paired_compare(*r, *ref);
        row.push_back(fmt("%+.1f (%zu / %zu), p = %s", 100.0 * pr.difference(), pr.only_b, pr.only_a, p_text(pr.p).c_str()));
        if (std::isfinite(r->bits_per_weight) && (pr.p >= 0.05 || pr.difference() >= 0) &&
            (!lowest_held || r->bits_per_weight < lowest_held->bits_per_weight))
          lowest_held = r;
        if (!worst || pr.difference() < worst_pr.difference()) worst = r, worst_pr = pr;
      }
    }
    const auto bl = r->by_level();
    for (const auto& [l, c] : levels) row.push_back(bl.count(l) ? pct(bl.at(l).accuracy()) : "-");
    t.rows.push_back(std::move(row));
  }
  d.paragraph("Accuracy by weights, most bits first. Bits per weight count codes, scales and zero points over the layer linears "
              "(q, k, v, o, gate, up, down). The paired column compares each configuration with " + ref_name +
              " on the same problems: the difference in points, the problems only one of the two solved, and the exact McNemar p.");
  d.add_table(std::move(t));
  if (ref) {
    const eval::group_stats ro = ref->overall();
    if (lowest_held)
      findings.push_back(fmt("Set %s: %s (%s bits/weight) is the fewest bits with no significant loss against %s "
                             "(%.1f%% against %.1f%%).",
                             tag.c_str(), lowest_held->label().c_str(), bits_text(lowest_held->bits_per_weight).c_str(), ref_name.c_str(),
                             100.0 * lowest_held->overall().accuracy(), 100.0 * ro.accuracy()));
    if (worst && worst_pr.p < 0.05 && worst_pr.difference() < 0)
      findings.push_back(fmt("Set %s: the largest loss is %s (%s bits/weight): %.1f points below %s (%zu problems lost, %zu gained, p = %s).",
                             tag.c_str(), worst->label().c_str(), bits_text(worst->bits_per_weight).c_str(), -100.0 * worst_pr.difference(),
                             ref_name.c_str(), worst_pr.only_b, worst_pr.only_a, p_text(worst_pr.p).c_str()));
  }

  // Plans and methods against the uniform formats: a method against RTN at the same bits; a plan
  // against the formats around it, with how much of their accuracy gap it closes for its bits.
  for (const eval_run* r : by_bits) {
    if (!std::isfinite(r->bits_per_weight) || std::isfinite(format_name_bits(r->weights)) || rtn_counterpart(runs, *r)) continue;
    const eval_run *lo = nullptr, *hi = nullptr, *same = nullptr;
    for (const eval_run* u : by_bits) {
      if (!std::isfinite(format_name_bits(u->weights)) || !std::isfinite(u->bits_per_weight)) continue;
      if (std::abs(u->bits_per_weight - r->bits_per_weight) < 1e-6) same = u;
      else if (u->bits_per_weight < r->bits_per_weight && (!lo || u->bits_per_weight > lo->bits_per_weight)) lo = u;
      else if (u->bits_per_weight > r->bits_per_weight && (!hi || u->bits_per_weight < hi->bits_per_weight)) hi = u;
    }
    const double acc = r->overall().accuracy();
    const auto versus = [&](const eval_run* u) {
      const paired_result pr = paired_compare(*r, *u);
      return fmt("%.1f%% for %s (%s bits; %+.1f points, %zu / %zu problems only one solved, p = %s)", 100.0 * u->overall().accuracy(),
                 u->label().c_str(), bits_text(u->bits_per_weight).c_str(), 100.0 * pr.difference(), pr.only_a, pr.only_b, p_text(pr.p).c_str());
    };
    if (same) {
      findings.push_back(fmt("Set %s: %s scores %.1f%%, against ", tag.c_str(), r->label().c_str(), 100.0 * acc) + versus(same) + ".");
    } else if (lo && hi) {
      std::string f = fmt("Set %s: %s (%s bits/weight) scores %.1f%%, against ", tag.c_str(), r->label().c_str(),
                          bits_text(r->bits_per_weight).c_str(), 100.0 * acc) +
                      versus(lo) + " and " + versus(hi);
      const double a_lo = lo->overall().accuracy(), a_hi = hi->overall().accuracy();
      if (a_hi > a_lo)
        f += fmt(": %.0f%% of the accuracy gap closed with %.0f%% of the extra bits", 100.0 * (acc - a_lo) / (a_hi - a_lo),
                 100.0 * (r->bits_per_weight - lo->bits_per_weight) / (hi->bits_per_weight - lo->bits_per_weight));
      findings.push_back(f + ".");
    }
  }

  // Calibrated methods (gptq:, awq:, sq:) against RTN of their format, problem by problem,
  // overall and by level.
  {
    table mt;
    mt.header = {"method [calibration]", "RTN", "all"};
    for (const auto& [l, c] : levels) mt.header.push_back("L" + std::to_string(l));
    const auto cell = [](const paired_result& pr) {
      return pr.n ? fmt("%+.1f (%zu / %zu) p = %s", 100.0 * pr.difference(), pr.only_a, pr.only_b, p_text(pr.p).c_str()) : std::string("-");
    };
    for (const auto& r : runs) {
      const eval_run* rtn = rtn_counterpart(runs, r);
      if (!rtn) continue;
      const paired_result all = paired_compare(r, *rtn);
      std::vector<std::string> row = {r.label(), rtn->label(), cell(all)};
      std::vector<std::string> below, significant;
      for (const auto& [l, c] : levels) {
        const int level = l;
        const paired_result pr = paired_compare(r, *rtn, [&](const eval_item& i) { return i.level == level; });
        row.push_back(cell(pr));
        if (pr.n && pr.difference() < 0) {
          below.push_back(fmt("L%d (%+.1f, %zu / %zu, p = %s)", l, 100.0 * pr.difference(), pr.only_a, pr.only_b, p_text(pr.p).c_str()));
          if (pr.p < 0.05) significant.push_back("L" + std::to_string(l));
        }
      }
      mt.rows.push_back(std::move(row));
      std::string f = fmt("Set %s: %s against %s: %+.1f points overall (%zu / %zu problems only one solved, p = %s); ", tag.c_str(),
                          r.label().c_str(), rtn->label().c_str(), 100.0 * all.difference(), all.only_a, all.only_b, p_text(all.p).c_str());
      if (levels.empty()) f.pop_back(), f.pop_back();
      else if (below.empty()) f += "at or above RTN at every level";
      else {
        f += "below RTN at ";
        for (std::size_t i = 0; i < below.size(); ++i) f += (i ? ", " : "") + below[i];
        f += significantly_text(significant);
      }
      findings.push_back(f + ".");
    }
    if (!mt.rows.empty()) {
      d.paragraph("Calibrated methods against round to nearest of the same format on the same problems: the difference in points, "
                  "the problems only the method / only RTN solved, and the exact McNemar p; overall and by level.");
      d.add_table(std::move(mt));
    }
  }

  // Accuracy against bits: uniform formats as a line, everything else as labelled points.
  {
    chart_series uniform{"uniform formats", {}, {}, {}, true}, other{"plans and methods", {}, {}, {}, false};
    for (const eval_run* r : by_bits) {
      if (!std::isfinite(r->bits_per_weight) || r->bits_per_weight > 8.9) continue;  // bf16 is the dashed line
      const bool plain = std::isfinite(format_name_bits(r->weights));
      chart_series& s = plain ? uniform : other;
      s.x.push_back(r->bits_per_weight);
      s.y.push_back(100.0 * r->overall().accuracy());
      s.point_labels.push_back(r->label());
    }
    std::reverse(uniform.x.begin(), uniform.x.end());
    std::reverse(uniform.y.begin(), uniform.y.end());
    std::reverse(uniform.point_labels.begin(), uniform.point_labels.end());
    std::vector<chart_series> series;
    if (!uniform.x.empty()) series.push_back(uniform);
    if (!other.x.empty()) series.push_back(other);
    if (!series.empty()) {
      chart_axes a;
      a.title = "Accuracy against bits per weight (set " + tag + ")";
      a.x_label = "bits per weight (layer linears)";
      a.y_label = "accuracy %";
      a.y_max = 100;
      if (ref) a.y_refs.push_back({100.0 * ref->overall().accuracy(), ref_name});
      d.add_figure({in.chart_dir + "/set" + tag + "_accuracy_bits.svg", line_chart_svg(a, series),
                    "Accuracy against bits per weight, problem set " + tag + "; dashed: " + ref_name + "."});
    }
  }

  // By level: bars, then where each level breaks.
  if (!levels.empty()) {
    std::vector<std::string> cats;
    cats.reserve(levels.size());
    for (const auto& [l, c] : levels) cats.push_back("L" + std::to_string(l));
    std::vector<bar_series> bars;
    for (const eval_run* r : by_bits) {
      bar_series b{r->label(), {}};
      const auto bl = r->by_level();
      for (const auto& [l, c] : levels) b.values.push_back(bl.count(l) ? 100.0 * bl.at(l).accuracy() : NAN);
      bars.push_back(std::move(b));
    }
    chart_axes a;
    a.title = "Accuracy by level (set " + tag + ")";
    a.x_label = "level (problem complexity)";
    a.y_label = "accuracy %";
    a.y_max = 100;
    d.add_figure({in.chart_dir + "/set" + tag + "_levels.svg", bar_chart_svg(a, cats, bars), "Accuracy by level, problem set " + tag + "."});
  }

  if (!ref) {
    d.paragraph("No run named '" + ref_name + "' in this set: no paired comparisons, nothing said about what breaks first.");
    return;
  }
  std::vector<const eval_run*> all;
  all.reserve(runs.size());
  for (const auto& r : runs) all.push_back(&r);
  const auto break_table = [&](bool by_level, const char* what) {
    auto order = break_order(*ref, all, by_level);
    if (order.empty()) return order;
    table bt;
    bt.header = {what, ref_name + " %", "breaks first at", "bits/weight", "drop there (points)", "p", "largest drop (points), at"};
    for (const auto& c : order)
      bt.rows.push_back({c.category, pct(c.reference_accuracy), c.breaks_at.empty() ? "holds" : c.breaks_at, bits_text(c.breaks_at_bits),
                         std::isfinite(c.drop) ? fmt("%.1f", 100.0 * c.drop) : "-", c.breaks_at.empty() ? "-" : p_text(c.p),
                         std::isfinite(c.worst_drop) ? fmt("%.1f, %s", 100.0 * c.worst_drop, c.worst_at.c_str()) : "-"});
    d.paragraph(std::string("Which ") + what + " breaks first, most fragile first. Each " + what +
                " breaks at the configuration with the most bits whose accuracy on it is at least 5 points below " + ref_name +
                "'s on the same problems, with McNemar p < 0.05; ties go to the larger drop.");
    d.add_table(std::move(bt));
    return order;
  };
  // "L4 at w2g64 (-68.2), L5 at w2g64 (-57.3), ...": the broken categories, most fragile first.
  const auto broken_list = [&](const std::vector<category_break>& order) {
    std::string s;
    for (const auto& c : order)
      if (!c.breaks_at.empty()) s += (s.empty() ? "" : ", ") + c.category + fmt(" at %s (-%.1f)", c.breaks_at.c_str(), 100.0 * c.drop);
    return s;
  };
  const auto level_order = break_table(true, "level");
  if (!level_order.empty() && !level_order.front().breaks_at.empty())
    findings.push_back(fmt("Set %s: the first level to break is %s, at %s (%s bits/weight; %.1f points down, p = %s). Levels in the "
                           "order they break (points lost): %s.",
                           tag.c_str(), level_order.front().category.c_str(), level_order.front().breaks_at.c_str(),
                           bits_text(level_order.front().breaks_at_bits).c_str(), 100.0 * level_order.front().drop,
                           p_text(level_order.front().p).c_str(), broken_list(level_order).c_str()));

  // By operation type: the points each configuration loses on each type (paired), and where each type breaks.
  const auto types = ref->by_type();
  if (!types.empty() && runs.size() > 1) {
    std::vector<std::string> rows, cols;
    for (const auto& [ty, c] : types) rows.push_back(ty);
    for (const eval_run* r : by_bits)
      if (r != ref) cols.push_back(r->label());
    std::vector<double> v;
    for (const auto& ty : rows)
      for (const eval_run* r : by_bits) {
        if (r == ref) continue;
        const paired_result pr = paired_compare(*ref, *r, [&](const eval_item& i) { return i.type == ty; });
        v.push_back(pr.n ? 100.0 * pr.difference() : NAN);
      }
    d.add_figure({in.chart_dir + "/set" + tag + "_types.svg",
                  heatmap_svg("Points lost against " + ref_name + " by operation type (set " + tag + ")", rows, cols, v, false, "%.0f"),
                  "Accuracy points lost against " + ref_name + " on the same problems, by operation type and weights, problem set " + tag +
                      " (darker: more lost)."});
    const auto type_order = break_table(false, "operation type");
    const std::string broken = broken_list(type_order);
    if (!broken.empty()) findings.push_back("Set " + tag + ": operation types in the order they break (points lost): " + broken + ".");
  }

  // Kinds of wrong answers.
  std::set<std::string> kinds;
  for (const auto& r : runs)
    for (const auto& [k, n] : r.errors()) kinds.insert(k);
  if (!kinds.empty()) {
    table et;
    et.header = {"weights", "wrong"};
    for (const auto& k : kinds) et.header.push_back(k);
    for (const eval_run* r : by_bits) {
      const auto e = r->errors();
      const eval::group_stats o = r->overall();
      std::vector<std::string> row = {r->label(), std::to_string(o.n - o.correct)};
      for (const auto& k : kinds) row.push_back(std::to_string(e.count(k) ? e.at(k) : 0));
      et.rows.push_back(std::move(row));
    }
    d.paragraph("Kinds of wrong answers (qmr's error taxonomy: a wrong calculation step, a wrong plan, an answer in the wrong format, "
                "a rounding slip).");
    d.add_table(std::move(et));
  }
}

inline void sensitivity_sections(document& d, const study_inputs& in, std::vector<std::string>& findings) {
  const sensitivity_results& s = *in.sensitivity;
  d.heading("Which layers and components break first: " + s.file);
  d.paragraph("Each unit quantized alone by RTN, every other weight as stored; KL is the mean per-token KL divergence (nats) of the "
              "model's next-token distribution from the unquantized model's on teacher-forced reference answers, 'verbatim' the share "
              "of answers greedy decoding still reproduces exactly" +
              (std::isfinite(s.reference_verbatim) ? fmt(" (unquantized: %.1f%%)", 100.0 * s.reference_verbatim) : std::string()) + ".");
  std::vector<std::string> formats;
  std::vector<sensitivity_unit> raised;  // --raise: over an all-quantized background
  for (const auto& u : s.units) {
    if (!u.context.empty()) {
      raised.push_back(u);
      continue;
    }
    if (std::find(formats.begin(), formats.end(), u.format) == formats.end()) formats.push_back(u.format);
  }
  // Layers and components as bars, one series per format.
  for (const char* kind : {"layer", "component"}) {
    std::vector<std::string> cats;
    for (const auto& u : s.units)
      if (u.kind == kind && u.context.empty()) {
        const std::string c = std::string(kind) == "layer" ? std::to_string(u.layer) : u.component;
        if (std::find(cats.begin(), cats.end(), c) == cats.end()) cats.push_back(c);
      }
    if (cats.empty()) continue;
    std::vector<bar_series> bars;
    for (const auto& f : formats) {
      bar_series b{f, std::vector<double>(cats.size(), NAN)};
      for (const auto& u : s.units)
        if (u.kind == kind && u.format == f && u.context.empty()) {
          const std::string c = std::string(kind) == "layer" ? std::to_string(u.layer) : u.component;
          b.values[static_cast<std::size_t>(std::find(cats.begin(), cats.end(), c) - cats.begin())] = u.kl;
        }
      bars.push_back(std::move(b));
    }
    chart_axes a;
    a.title = std::string("KL to the unquantized model, one ") + kind + " quantized at a time";
    a.x_label = std::string(kind) == "layer" ? "layer" : "component (in every layer)";
    a.y_label = "mean KL (nats/token)";
    d.add_figure({in.chart_dir + "/sensitivity_" + kind + "s.svg", bar_chart_svg(a, cats, bars),
                  std::string("Sensitivity by ") + kind + ": KL when only that " + kind + " is quantized."});
  }
  for (const auto& f : formats) {
    std::vector<const sensitivity_unit*> lin, layers;
    const sensitivity_unit* comp_top = nullptr;
    const sensitivity_unit* all = nullptr;
    for (const auto& u : s.units) {
      if (u.format != f || !u.context.empty()) continue;
      if (u.kind == "linear") lin.push_back(&u);
      if (u.kind == "layer") layers.push_back(&u);
      if (u.kind == "component" && (!comp_top || u.kl > comp_top->kl)) comp_top = &u;
      if (u.kind == "all") all = &u;
    }
    if (!lin.empty()) {
      std::stable_sort(lin.begin(), lin.end(), [](const sensitivity_unit* a, const sensitivity_unit* b) { return a->kl > b->kl; });
      table t;
      t.header = {"linear (" + f + ")", "KL", "largest KL at a position", "top-1 agreement %", "verbatim %"};
      for (std::size_t i = 0; i < std::min<std::size_t>(10, lin.size()); ++i)
        t.rows.push_back({lin[i]->unit, fmt("%.3g", lin[i]->kl), fmt("%.3g", lin[i]->kl_max), pct(lin[i]->top1), pct(lin[i]->verbatim)});
      d.paragraph("The ten most sensitive linears at " + f + ":");
      d.add_table(std::move(t));
      // Heatmap layers x components.
      std::vector<int> lays;
      std::vector<std::string> comps;
      for (const auto* u : lin) {
        if (u->layer >= 0 && std::find(lays.begin(), lays.end(), u->layer) == lays.end()) lays.push_back(u->layer);
        if (!u->component.empty() && std::find(comps.begin(), comps.end(), u->component) == comps.end()) comps.push_back(u->component);
      }
      std::sort(lays.begin(), lays.end());
      if (!lays.empty() && !comps.empty()) {
        static const std::vector<std::string> order = {"q", "k", "v", "o", "gate", "up", "down"};
        std::stable_sort(comps.begin(), comps.end(), [&](const std::string& a, const std::string& b) {
          return std::find(order.begin(), order.end(), a) < std::find(order.begin(), order.end(), b);
        });
        std::vector<std::string> rl;
        rl.reserve(lays.size());
        for (const int l : lays) rl.push_back("layer " + std::to_string(l));
        std::vector<double> v(lays.size() * comps.size(), NAN);
        for (const auto* u : lin) {
          const auto li = std::find(lays.begin(), lays.end(), u->layer);
          const auto ci = std::find(comps.begin(), comps.end(), u->component);
          if (li != lays.end() && ci != comps.end())
            v[static_cast<std::size_t>(li - lays.begin()) * comps.size() + static_cast<std::size_t>(ci - comps.begin())] = u->kl;
        }
        d.add_figure({in.chart_dir + "/sensitivity_linears_" + f + ".svg",
                      heatmap_svg("KL per linear quantized alone to " + f, rl, comps, v, true),
                      "Each linear quantized alone to " + f + ": KL to the unquantized model (log colour scale)."});
      }
      findings.push_back(fmt("At %s the most sensitive linear is %s (KL %.3g, %.1fx the median linear's).", f.c_str(), lin.front()->unit.c_str(),
                             lin.front()->kl, lin[lin.size() / 2]->kl > 0 ? lin.front()->kl / lin[lin.size() / 2]->kl : NAN));
    }
    if (!layers.empty()) {
      std::vector<const sensitivity_unit*> sorted = layers;
      std::stable_sort(sorted.begin(), sorted.end(), [](const sensitivity_unit* a, const sensitivity_unit* b) { return a->kl > b->kl; });
      double others = 0;
      for (std::size_t i = 1; i < sorted.size(); ++i) others = std::max(others, sorted[i]->kl);
      std::string s2 = fmt("At %s the most sensitive layer is %d (KL %.3g", f.c_str(), sorted.front()->layer, sorted.front()->kl);
      if (others > 0) s2 += fmt(", %.1fx the next", sorted.front()->kl / others);
      s2 += ")";
      if (comp_top) s2 += fmt("; the most sensitive component is %s (KL %.3g across all layers)", comp_top->component.c_str(), comp_top->kl);
      if (all) {
        double sum = 0;
        for (const auto* u : layers) sum += u->kl;
        if (sum > 0) s2 += fmt("; all layers at once cost %.3g, %.1fx the sum of the layers alone", all->kl, all->kl / sum);
      }
      findings.push_back(s2 + ".");
    }
  }
  // --raise: each linear raised alone from a model whose every layer linear is at the lower format.
  const sensitivity_unit* base = nullptr;
  std::vector<const sensitivity_unit*> ups;
  for (const auto& u : raised) {
    if (u.unit == "background") base = &u;
    else if (u.kind == "linear") ups.push_back(&u);
  }
  if (base && !ups.empty()) {
    std::stable_sort(ups.begin(), ups.end(), [](const sensitivity_unit* a, const sensitivity_unit* b) { return a->kl < b->kl; });
    table t;
    t.header = {"linear raised to " + ups.front()->format, "KL", "KL saved", "saved %", "verbatim %"};
    for (std::size_t i = 0; i < std::min<std::size_t>(10, ups.size()); ++i)
      t.rows.push_back({ups[i]->unit, fmt("%.4g", ups[i]->kl), fmt("%.4g", base->kl - ups[i]->kl), fmt("%.1f", 100.0 * (base->kl - ups[i]->kl) / base->kl),
                        pct(ups[i]->verbatim)});
    d.paragraph(fmt("Every layer linear at %s (KL %.4g, answers verbatim %.1f%%), then each linear alone raised to %s: the ten raises "
                    "that save the most. Measured in the quantized model, so interactions between quantized layers count.",
                    base->format.c_str(), base->kl, 100.0 * base->verbatim, ups.front()->format.c_str()));
    d.add_table(std::move(t));
    // How far the one-at-a-time ranking (over the stored model) agrees: of the ten best raises,
    // how many are among the ten linears most sensitive alone at the lower format.
    std::vector<const sensitivity_unit*> alone;
    for (const auto& u : s.units)
      if (u.context.empty() && u.kind == "linear" && u.format == base->format) alone.push_back(&u);
    std::stable_sort(alone.begin(), alone.end(), [](const sensitivity_unit* a, const sensitivity_unit* b) { return a->kl > b->kl; });
    std::string f = fmt("In the all-%s model, raising %s alone to %s saves the most: KL %.4g -> %.4g (%.1f%%)", base->format.c_str(),
                        ups.front()->unit.c_str(), ups.front()->format.c_str(), base->kl, ups.front()->kl,
                        100.0 * (base->kl - ups.front()->kl) / base->kl);
    if (!alone.empty()) {
      const std::size_t k = std::min<std::size_t>({10, alone.size(), ups.size()});
      std::size_t common = 0;
      for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) common += ups[i]->unit == alone[j]->unit;
      f += fmt("; %zu of its %zu best raises are among the %zu linears most sensitive when quantized alone", common, k, k);
    }
    findings.push_back(f + ".");
  }
}

inline void stats_sections(document& d, const study_inputs& in, std::vector<std::string>& findings) {
  const stats_results& st = *in.stats;
  d.heading("Where activations are hard to quantize: " + st.file);
  std::vector<std::string> points;
  for (const auto& p : st.points)
    if (std::find(points.begin(), points.end(), p.point) == points.end()) points.push_back(p.point);
  const auto chart = [&](const char* title, const char* ylabel, bool log, auto value, const std::string& file, const std::string& caption) {
    std::vector<chart_series> series;
    for (const auto& name : points) {
      chart_series s{point_label(name), {}, {}, {}, true};
      for (const auto& p : st.points)
        if (p.point == name) s.x.push_back(p.layer), s.y.push_back(value(p));
      series.push_back(std::move(s));
    }
    chart_axes a;
    a.title = title;
    a.x_label = "layer";
    a.y_label = ylabel;
    a.y_log = log;
    d.add_figure({in.chart_dir + "/" + file, line_chart_svg(a, series), caption});
  };
  if (!st.points.empty()) {
    chart("Largest |activation| over its RMS, by layer", "max |x| / RMS", true,
          [](const stat_point& p) { return p.rms > 0 ? p.max_abs / p.rms : NAN; }, "activations_peak.svg",
          "Peak-to-RMS ratio of each linear's input (and the residual stream) by layer: outliers that per-token int8/int4 must span.");
    chart("Per-token int4 quantization error of linear inputs, by layer", "relative error", true, [](const stat_point& p) { return p.a4_error; },
          "activations_int4_error.svg", "Relative error of per-token symmetric int4 quantization of each input, by layer.");
    const stat_point* peak = nullptr;
    const stat_point* a4 = nullptr;
    for (const auto& p : st.points) {
      if (p.rms > 0 && (!peak || p.max_abs / p.rms > peak->max_abs / peak->rms)) peak = &p;
      if (p.point != "layer_output" && (!a4 || p.a4_error > a4->a4_error)) a4 = &p;
    }
    if (peak)
      findings.push_back(fmt("The largest activation outlier is at layer %d's %s: max |x| = %.1fx RMS (%lld of %lld channels beyond 8 RMS).",
                             peak->layer, point_label(peak->point).c_str(), peak->max_abs / peak->rms, static_cast<long long>(peak->outlier_channels),
                             static_cast<long long>(peak->channels)));
    if (a4)
      findings.push_back(fmt("Per-token int4 activations hurt most at layer %d's %s (relative error %.3g; int8 there: %.2g).", a4->layer,
                             point_label(a4->point).c_str(), a4->a4_error, a4->a8_error));
  }
  if (!st.attention.empty()) {
    table t;
    t.header = {"layer", "attention entropy (nats)", "mass on the first token"};
    for (const auto& a : st.attention) t.rows.push_back({std::to_string(a.layer), fmt("%.3f", a.entropy), fmt("%.3f", a.first_token_mass)});
    d.paragraph("Attention by layer: mean entropy of the attention distributions and the share of attention on the first token.");
    d.add_table(std::move(t));
  }
}

}  // namespace detail

// The report: findings first, then a section per eval problem set, the sensitivity and the
// activation statistics when given.
inline document study_report(const study_inputs& in) {
  check(!in.evals.empty() || in.sensitivity || in.stats, "study report: no results given");
  for (const auto& set : in.evals) check(!set.empty(), "study report: a results file without runs");
  document body(in.title);
  std::vector<std::string> findings;
  for (std::size_t i = 0; i < in.evals.size(); ++i) detail::eval_sections(body, in, i, findings);
  if (in.sensitivity) detail::sensitivity_sections(body, in, findings);
  if (in.stats) detail::stats_sections(body, in, findings);
  document d(in.title);
  d.heading("Findings");
  if (findings.empty()) d.paragraph("Nothing to summarize: no reference run, sensitivity or statistics.");
  d.bullets(findings);
  d.append(body);
  return d;
}

}  // namespace qmr::report
