// `qmr eval` results files read back for reports: per-problem records, accuracy by level and operation type, paired comparisons of two weight configurations on the same problems (exact McNemar test), and which levels or types break first as bits shrink.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../eval/generative.hpp"
#include "../quant/format.hpp"

namespace qmr::report {

struct eval_item {
  std::string id;
  int level = 0;     // 0: the task has no levels
  std::string type;  // empty: the task has no operation types
  bool correct = false;
  std::string error_kind;  // of a wrong answer, when the results carry the taxonomy
};

// One weight configuration's results on one problem set.
struct eval_run {
  std::string file;     // the results file it came from
  std::string weights;  // as given to --quant: "stored", "w4g128", "gptq:w3g128", "@plan.txt", ...
  std::string task;
  std::int64_t seed = -1;  // synthetic problems' seed, -1 when not recorded
  // Storage bits per weight over the layer linears: recorded by qmr eval, or worked out from
  // a plain format name (w4g128 -> 4.156); NaN when neither says (older files, plans).
  double bits_per_weight = NAN;
  // Calibrated runs (gptq:, awq:, sq:): their calibration set and the settings that differ from
  // the defaults, e.g. "synth 48x256" or "generic_text 48x256, damp 10"; empty otherwise.
  std::string calibration;
  std::vector<eval_item> items;

  // The name tables use: the weights, and the calibration in brackets when there is one.
  std::string label() const { return calibration.empty() ? weights : weights + " [" + calibration + "]"; }

  eval::group_stats overall() const {
    eval::group_stats t;
    for (const auto& i : items) ++t.n, t.correct += i.correct ? 1 : 0;
    return t;
  }
  std::map<int, eval::group_stats> by_level() const {
    std::map<int, eval::group_stats> m;
    for (const auto& i : items)
      if (i.level > 0) ++m[i.level].n, m[i.level].correct += i.correct ? 1 : 0;
    return m;
  }
  std::map<std::string, eval::group_stats> by_type() const {
    std::map<std::string, eval::group_stats> m;
    for (const auto& i : items)
      if (!i.type.empty()) ++m[i.type].n, m[i.type].correct += i.correct ? 1 : 0;
    return m;
  }
  std::map<std::string, int> errors() const {
    std::map<std::string, int> m;
    for (const auto& i : items)
      if (!i.correct && !i.error_kind.empty()) ++m[i.error_kind];
    return m;
  }
};

// Bits per weight of a plain format name at a row length it groups (NaN for anything else:
// methods, plans, activation suffixes, per-channel formats, whose overhead depends on the rows).
inline double format_name_bits(const std::string& weights) {
  if (weights.find_first_of(":@+") != std::string::npos || weights == "stored") return NAN;
  try {
    const quant::format_spec f = quant::parse_format(weights);
    if (!f.is_quantized()) return f.bits_per_weight(1);
    if (f.group == quant::per_channel) return NAN;
    return f.bits_per_weight(static_cast<std::int64_t>(f.group) * 8);  // any multiple of the group: codes + scales (+ zeros) per group
  } catch (const error&) {
    return NAN;
  }
}

namespace detail {

// "synth 48x256", "generic_text 48x256, damp 10, pairs qkv,gate_up, no clip": a calibration
// record (qmr eval's "calibration" object) in a few words; settings at their defaults are left out.
inline std::string calibration_label(const nlohmann::json& c) {
  if (!c.is_object() || !c.contains("source") || !c["source"].is_string()) return {};
  std::string src = c["source"].get<std::string>();
  if (const auto slash = src.find_last_of('/'); slash != std::string::npos) src = src.substr(slash + 1);
  if (const auto dot = src.find_last_of('.'); dot != std::string::npos && dot > 0) src = src.substr(0, dot);
  std::string s = src;
  if (c.contains("n") && c["n"].is_number_integer() && c.contains("len") && c["len"].is_number_integer())
    s += " " + std::to_string(c["n"].get<std::int64_t>()) + "x" + std::to_string(c["len"].get<std::int64_t>());
  if (c.contains("damp") && c["damp"].is_number() && std::abs(c["damp"].get<double>() - 0.01) > 1e-12) {
    char b[48];
    std::snprintf(b, sizeof b, ", damp %g", c["damp"].get<double>());
    s += b;
  }
  if (c.contains("awq_pairs") && c["awq_pairs"].is_string() && c["awq_pairs"].get<std::string>() != "all")
    s += ", pairs " + c["awq_pairs"].get<std::string>();
  if (c.contains("awq_clip") && c["awq_clip"].is_boolean() && !c["awq_clip"].get<bool>()) s += ", no clip";
  return s;
}

inline eval_run parse_one_run(const nlohmann::json& r, const std::string& file, const std::string& where) {
  const auto field = [&](const std::string& name) { return in_file(file, "", where + name); };
  check(r.is_object(), "not a results object", field(""));
  eval_run run;
  run.file = file;
  check(r.contains("weights") && r["weights"].is_string(), "missing or not a string (is this a qmr eval --out file?)", field("weights"));
  run.weights = r["weights"].get<std::string>();
  run.task = r.value("task", std::string());
  if (r.contains("seed") && r["seed"].is_number_integer()) run.seed = r["seed"].get<std::int64_t>();
  if (r.contains("efficiency") && r["efficiency"].is_object() && r["efficiency"].contains("layer_bits_per_weight") &&
      r["efficiency"]["layer_bits_per_weight"].is_number())
    run.bits_per_weight = r["efficiency"]["layer_bits_per_weight"].get<double>();
  if (!std::isfinite(run.bits_per_weight)) run.bits_per_weight = format_name_bits(run.weights);
  if (r.contains("calibration")) run.calibration = calibration_label(r["calibration"]);
  check(r.contains("items") && r["items"].is_array(), "missing or not an array (the report needs the per-problem records)", field("items"));
  const auto& items = r["items"];
  for (std::size_t k = 0; k < items.size(); ++k) {
    const auto& it = items[k];
    const std::string at = "items[" + std::to_string(k) + "].";
    check(it.is_object(), "not an object", field(at.substr(0, at.size() - 1)));
    eval_item e;
    check(it.contains("id") && it["id"].is_string(), "missing or not a string", field(at + "id"));
    check(it.contains("correct") && it["correct"].is_boolean(), "missing or not a boolean", field(at + "correct"));
    e.id = it["id"].get<std::string>();
    e.correct = it["correct"].get<bool>();
    if (it.contains("level")) {
      check(it["level"].is_number_integer() && it["level"].get<std::int64_t>() >= 0 && it["level"].get<std::int64_t>() <= 1000,
            "not a level (an integer 0-1000)", field(at + "level"));
      e.level = it["level"].get<int>();
    }
    if (it.contains("type")) {
      check(it["type"].is_string(), "not a string", field(at + "type"));
      e.type = it["type"].get<std::string>();
    }
    if (it.contains("error_kind") && it["error_kind"].is_string()) e.error_kind = it["error_kind"].get<std::string>();
    run.items.push_back(std::move(e));
  }
  check(!run.items.empty(), "no problems", field("items"));
  return run;
}

}  // namespace detail

// The runs of one `qmr eval --out` file: an object with "runs" (several --quant specs) or one
// run's object. `file` names the source in errors, with the field (e.g. runs[1].items[7].correct).
inline std::vector<eval_run> parse_eval_results(const nlohmann::json& j, const std::string& file) {
  check(j.is_object(), "not a qmr eval results object", in_file(file));
  std::vector<eval_run> runs;
  if (j.contains("runs")) {
    check(j["runs"].is_array() && !j["runs"].empty(), "not a non-empty array", in_file(file, "", "runs"));
    for (std::size_t i = 0; i < j["runs"].size(); ++i)
      runs.push_back(detail::parse_one_run(j["runs"][i], file, "runs[" + std::to_string(i) + "]."));
  } else {
    runs.push_back(detail::parse_one_run(j, file, ""));
  }
  return runs;
}

// Two configurations on the problems both answered (matched by id): how many each alone
// solved, and the exact two-sided McNemar p-value (binomial test on the discordant pairs).
struct paired_result {
  std::size_t n = 0;       // problems in common
  std::size_t only_a = 0;  // solved by a, not by b
  std::size_t only_b = 0;
  double p = 1.0;
  double difference() const { return n ? (static_cast<double>(only_a) - static_cast<double>(only_b)) / static_cast<double>(n) : 0.0; }
};

// Exact two-sided binomial p-value of min(b, c) or fewer successes in b + c fair trials.
inline double mcnemar_exact_p(std::size_t b, std::size_t c) {
  const std::size_t n = b + c, k = std::min(b, c);
  if (n == 0) return 1.0;
  const double log_half_n = -static_cast<double>(n) * std::log(2.0);
  double tail = 0;
  for (std::size_t i = 0; i <= k; ++i)
    tail += std::exp(std::lgamma(static_cast<double>(n) + 1) - std::lgamma(static_cast<double>(i) + 1) -
                     std::lgamma(static_cast<double>(n - i) + 1) + log_half_n);
  return std::min(1.0, 2.0 * tail);
}

// a against b on their common problems; `keep` selects problems (by a's record).
template <class Keep>
paired_result paired_compare(const eval_run& a, const eval_run& b, const Keep& keep) {
  std::map<std::string, bool> b_correct;
  for (const auto& i : b.items) b_correct[i.id] = i.correct;
  paired_result r;
  for (const auto& i : a.items) {
    if (!keep(i)) continue;
    const auto it = b_correct.find(i.id);
    if (it == b_correct.end()) continue;
    ++r.n;
    if (i.correct && !it->second) ++r.only_a;
    if (!i.correct && it->second) ++r.only_b;
  }
  r.p = mcnemar_exact_p(r.only_a, r.only_b);
  return r;
}
inline paired_result paired_compare(const eval_run& a, const eval_run& b) {
  return paired_compare(a, b, [](const eval_item&) { return true; });
}

// Where a category of problems (a level, an operation type) first breaks as the bits per
// weight shrink: the configuration with the most bits whose accuracy on the category is at
// least `min_drop` below the reference's on the same problems with McNemar p < alpha.
struct category_break {
  std::string category;
  double reference_accuracy = NAN;
  std::string breaks_at;     // weights; empty: holds at every configuration
  double breaks_at_bits = NAN;
  double drop = NAN;         // reference minus configuration, in accuracy (0-1), at breaks_at
  double p = 1.0;
  double worst_drop = NAN;   // the largest drop over all configurations, and where
  std::string worst_at;
};

// `runs` are configurations on the problems of `reference` (same ids); those without bits per
// weight are skipped. Categories are levels ("L3") when by_level, else operation types. Sorted
// fragile first: broken at more bits first, then by the larger worst drop.
inline std::vector<category_break> break_order(const eval_run& reference, const std::vector<const eval_run*>& runs, bool by_level,
                                               double min_drop = 0.05, double alpha = 0.05) {
  std::vector<const eval_run*> sorted;
  for (const eval_run* r : runs)
    if (r != &reference && std::isfinite(r->bits_per_weight)) sorted.push_back(r);
  std::stable_sort(sorted.begin(), sorted.end(), [](const eval_run* x, const eval_run* y) { return x->bits_per_weight > y->bits_per_weight; });
  std::vector<std::string> cats;
  if (by_level)
    for (const auto& [l, t] : reference.by_level()) cats.push_back("L" + std::to_string(l));
  else
    for (const auto& [ty, t] : reference.by_type()) cats.push_back(ty);
  std::vector<category_break> out;
  for (const std::string& c : cats) {
    const auto in_cat = [&](const eval_item& i) { return by_level ? "L" + std::to_string(i.level) == c : i.type == c; };
    category_break cb;
    cb.category = c;
    eval::group_stats ref;
    for (const auto& i : reference.items)
      if (in_cat(i)) ++ref.n, ref.correct += i.correct ? 1 : 0;
    cb.reference_accuracy = ref.accuracy();
    for (const eval_run* r : sorted) {
      const paired_result pr = paired_compare(reference, *r, in_cat);
      const double drop = pr.difference();  // reference solved alone minus r alone: the drop
      if (!std::isfinite(cb.worst_drop) || drop > cb.worst_drop) cb.worst_drop = drop, cb.worst_at = r->label();
      if (cb.breaks_at.empty() && pr.n > 0 && drop >= min_drop && pr.p < alpha) {
        cb.breaks_at = r->label();
        cb.breaks_at_bits = r->bits_per_weight;
        cb.drop = drop;
        cb.p = pr.p;
      }
    }
    out.push_back(std::move(cb));
  }
  std::stable_sort(out.begin(), out.end(), [](const category_break& x, const category_break& y) {
    const double bx = std::isfinite(x.breaks_at_bits) ? x.breaks_at_bits : -1, by = std::isfinite(y.breaks_at_bits) ? y.breaks_at_bits : -1;
    if (bx != by) return bx > by;
    const double wx = std::isfinite(x.worst_drop) ? x.worst_drop : -1, wy = std::isfinite(y.worst_drop) ? y.worst_drop : -1;
    return wx > wy;
  });
  return out;
}

// Results files that scored the same problems (same task, seed and problem ids, in order) as one
// problem set, so that runs from different files compare problem by problem (a calibration study
// writes its text-calibrated runs to one file and RTN to another). A run whose label an earlier
// file of the set already holds is dropped. Sets keep the order of their first file.
inline std::vector<std::vector<eval_run>> merge_problem_sets(const std::vector<std::vector<eval_run>>& files) {
  std::vector<std::vector<eval_run>> sets;
  const auto same_problems = [](const eval_run& a, const eval_run& b) {
    if (a.task != b.task || a.seed != b.seed || a.items.size() != b.items.size()) return false;
    for (std::size_t i = 0; i < a.items.size(); ++i)
      if (a.items[i].id != b.items[i].id) return false;
    return true;
  };
  for (const auto& file : files) {
    if (file.empty()) continue;
    std::vector<eval_run>* into = nullptr;
    for (auto& set : sets)
      if (same_problems(set.front(), file.front())) into = &set;
    if (!into) {
      sets.emplace_back();
      into = &sets.back();
    }
    for (const auto& r : file)
      if (std::none_of(into->begin(), into->end(), [&](const eval_run& x) { return x.label() == r.label(); })) into->push_back(r);
  }
  return sets;
}

// The RTN run a calibrated run ("gptq:w3g128", "awq:w2g64+clip", "sq:w8g128+a8") is measured
// against: the run named by the weights after the method's prefix, in the same set; null if none.
inline const eval_run* rtn_counterpart(const std::vector<eval_run>& set, const eval_run& r) {
  const auto colon = r.weights.find(':');
  if (colon == std::string::npos || r.weights.find('@') != std::string::npos) return nullptr;
  const std::string base = r.weights.substr(colon + 1);
  for (const auto& x : set)
    if (x.weights == base) return &x;
  return nullptr;
}

}  // namespace qmr::report
