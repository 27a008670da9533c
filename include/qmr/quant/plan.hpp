// Precision plans: which format each linear weight of a model gets, by component and layer range or by tensor-name
// pattern, written one rule per line (or as JSON), checked so that every weight matches exactly one rule or the default.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../io/json_file.hpp"
#include "../io/text_file.hpp"
#include "format.hpp"

// The text form, one rule per line ('#' starts a comment):
//
//   layers 0-11  attn     w2g64      # q, k, v and o of layers 0..11
//   layers 12,14 q,k      w3g128
//   mlp                   w4g128     # gate, up and down of every layer
//   *.down_proj.weight    w8g128     # a glob over the tensor name (needs no layer range)
//   lm_head               w8g128
//   embed                 keep       # stored precision, not quantized
//   default               w4g128     # everything no rule names
//
// A rule is `[layers RANGES] SELECTORS FORMAT`:
//   RANGES     comma-separated layer numbers and inclusive ranges A-B;
//   SELECTORS  comma-separated components (q k v o gate up down embed lm_head), groups
//              (attn = q,k,v,o; mlp = gate,up,down; linear = all seven; all = every weight),
//              or globs over the full tensor name ('*' and '?'; an item with '*', '?' or '.');
//   FORMAT     a quantized format (w4g128, w3g64s, w8gc, ...) or `keep` (the stored precision)
//              or a dense dtype (bf16, f16, f32).
// The same in JSON: {"default": "w4g128", "rules": [{"layers": "0-11", "select": "attn", "format": "w2g64"}, ...]}
// (where "select" may also be an array); errors then name the rule's index.
//
// Checks, all naming the line: unknown words, bad ranges, a rule that selects no weight of the
// model (a typo would otherwise go unnoticed), a weight two rules select, a weight no rule selects
// and no default covers, and a layer range on embed/lm_head (they belong to no layer).

namespace qmr::quant {

// The weights a plan assigns, as the model names them.
enum class plan_component : std::uint8_t { q, k, v, o, gate, up, down, embed, lm_head };

inline const char* plan_component_name(plan_component c) {
  switch (c) {
    case plan_component::q: return "q";
    case plan_component::k: return "k";
    case plan_component::v: return "v";
    case plan_component::o: return "o";
    case plan_component::gate: return "gate";
    case plan_component::up: return "up";
    case plan_component::down: return "down";
    case plan_component::embed: return "embed";
    case plan_component::lm_head: return "lm_head";
  }
  return "?";
}

// One weight of the model: its tensor name, layer (-1 for embed and lm_head) and component.
struct plan_target {
  std::string name;
  int layer = -1;
  plan_component component = plan_component::q;
};

// What a rule assigns: a format, or the stored precision.
struct plan_format {
  bool keep = false;    // the stored precision
  format_spec spec{};   // when !keep: quantized, or a dense dtype to convert to

  std::string str() const { return keep ? "keep" : spec.str(); }
  static plan_format parse(std::string_view text) {
    if (text == "keep") return {true, {}};
    return {false, parse_format(text)};
  }
};

struct plan_rule {
  int line = 0;                          // 1-based line of the text, or 1-based index of the JSON rule
  std::string where;                     // "file:line" or "file: rule N", for messages
  std::vector<std::pair<int, int>> layers;  // inclusive ranges; empty = every layer
  std::vector<plan_component> components;
  std::vector<std::string> globs;
  bool everything = false;               // "all"
  plan_format format;
  std::string text;                      // the rule as written, for messages
};

struct plan_assignment {
  plan_target target;
  plan_format format;
  int rule_line = 0;  // 0 when the default applied
};

namespace detail {

// Glob match with '*' (any run) and '?' (one character), iterative with backtracking to the last '*'.
inline bool glob_match(std::string_view pattern, std::string_view s) {
  std::size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == s[i])) {
      ++p;
      ++i;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

inline std::vector<std::string> split_on(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

inline int parse_layer_number(const std::string& s, const std::string& where) {
  if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    throw error(where + ": layer '" + s + "' is not a non-negative number");
  return std::stoi(s);
}

inline std::vector<std::pair<int, int>> parse_layer_ranges(const std::string& text, const std::string& where) {
  std::vector<std::pair<int, int>> out;
  for (const std::string& item : split_on(text, ',')) {
    const std::size_t dash = item.find('-');
    if (dash == std::string::npos) {
      const int n = parse_layer_number(item, where);
      out.emplace_back(n, n);
      continue;
    }
    const int a = parse_layer_number(item.substr(0, dash), where);
    const int b = parse_layer_number(item.substr(dash + 1), where);
    if (a > b) throw error(where + ": layer range " + item + " runs backwards");
    out.emplace_back(a, b);
  }
  return out;
}

inline void add_selector(plan_rule& r, const std::string& item, const std::string& where) {
  using c = plan_component;
  if (item.empty()) throw error(where + ": empty selector (a stray comma?)");
  if (item.find_first_of("*?.") != std::string::npos) {
    r.globs.push_back(item);
    return;
  }
  static constexpr struct {
    const char* name;
    std::initializer_list<c> components;
  } words[] = {{"q", {c::q}},
               {"k", {c::k}},
               {"v", {c::v}},
               {"o", {c::o}},
               {"gate", {c::gate}},
               {"up", {c::up}},
               {"down", {c::down}},
               {"embed", {c::embed}},
               {"lm_head", {c::lm_head}},
               {"attn", {c::q, c::k, c::v, c::o}},
               {"mlp", {c::gate, c::up, c::down}},
               {"linear", {c::q, c::k, c::v, c::o, c::gate, c::up, c::down}}};
  if (item == "all") {
    r.everything = true;
    return;
  }
  for (const auto& w : words)
    if (item == w.name) {
      r.components.insert(r.components.end(), w.components.begin(), w.components.end());
      return;
    }
  throw error(where + ": unknown selector '" + item +
              "' (expected q, k, v, o, gate, up, down, embed, lm_head, attn, mlp, linear, all or a name glob)");
}

inline plan_format parse_rule_format(const std::string& text, const std::string& where) {
  try {
    return plan_format::parse(text);
  } catch (const error& e) {
    throw error(where + ": " + e.message());
  }
}

}  // namespace detail

class precision_plan {
 public:
  // Parses the text or JSON form; `source` names the text in messages (a file path).
  static precision_plan parse(std::string_view text, const std::string& source = "plan") {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && text[first] == '{') return parse_json_(text, source);
    precision_plan plan;
    plan.source_ = source;
    std::istringstream in{std::string(text)};
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      const std::string where = source + ":" + std::to_string(number);
      if (const std::size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
      std::istringstream words(line);
      std::vector<std::string> w;
      for (std::string s; words >> s;) w.push_back(s);
      if (w.empty()) continue;
      if (w[0] == "default") {
        if (w.size() != 2) throw error(where + ": expected 'default FORMAT'");
        if (plan.default_) throw error(where + ": a second default (the first is on line " +
                                       std::to_string(plan.default_line_) + ")");
        plan.default_ = detail::parse_rule_format(w[1], where);
        plan.default_line_ = number;
        continue;
      }
      plan_rule r;
      r.line = number;
      r.where = where;
      r.text = line;
      std::size_t i = 0;
      if (w[0] == "layers" || w[0] == "layer") {
        if (w.size() < 2) throw error(where + ": '" + w[0] + "' needs a range such as 0-11");
        r.layers = detail::parse_layer_ranges(w[1], where);
        i = 2;
      }
      if (w.size() != i + 2)
        throw error(where + ": expected '[layers RANGES] SELECTORS FORMAT', got " + std::to_string(w.size()) + " words");
      for (const std::string& item : detail::split_on(w[i], ',')) detail::add_selector(r, item, where);
      r.format = detail::parse_rule_format(w[i + 1], where);
      plan.check_rule_(r, where);
      plan.rules_.push_back(std::move(r));
    }
    if (plan.rules_.empty() && !plan.default_) throw error(source + ": the plan has no rules and no default");
    return plan;
  }

  static precision_plan load(const std::filesystem::path& file) {
    return parse(io::read_text_file(file), file.string());
  }

  // The plan of a single format for every layer's linears, embeddings and output head kept:
  // what `--quant w4g128` means (GPTQ and AWQ keep them too: a small share of a large model's
  // bytes and the most sensitive tensors).
  static precision_plan uniform(const format_spec& spec) {
    precision_plan plan;
    plan.source_ = spec.str();
    plan_rule keep;
    keep.line = 1;
    keep.where = spec.str();
    keep.components = {plan_component::embed, plan_component::lm_head};
    keep.format = plan_format{true, {}};
    keep.text = "embed,lm_head keep";
    plan.rules_.push_back(keep);
    plan.default_ = plan_format{false, spec};
    plan.default_line_ = 2;
    return plan;
  }

  const std::vector<plan_rule>& rules() const { return rules_; }
  const std::optional<plan_format>& default_format() const { return default_; }
  const std::string& source() const { return source_; }

  // The format of every target, in the targets' order. Throws on a target two rules select, a
  // target nothing covers, or a rule that selects nothing.
  std::vector<plan_assignment> resolve(const std::vector<plan_target>& targets) const {
    std::vector<plan_assignment> out;
    std::vector<int> used(rules_.size(), 0);
    for (const plan_target& t : targets) {
      const plan_rule* hit = nullptr;
      for (std::size_t i = 0; i < rules_.size(); ++i) {
        if (!matches_(rules_[i], t)) continue;
        if (hit)
          throw error(t.name + " is selected by two rules, " + hit->where + " (" + trim_(hit->text) + ") and " +
                      rules_[i].where + " (" + trim_(rules_[i].text) + "); each weight must match exactly one rule");
        hit = &rules_[i];
        ++used[i];
      }
      if (hit) {
        out.push_back({t, hit->format, hit->line});
      } else if (default_) {
        out.push_back({t, *default_, 0});
      } else {
        throw error(source_ + ": no rule selects " + t.name + " and the plan has no default");
      }
    }
    for (std::size_t i = 0; i < rules_.size(); ++i)
      if (!used[i])
        throw error(rules_[i].where + ": the rule '" + trim_(rules_[i].text) + "' selects no weight of this model");
    return out;
  }

 private:
  static std::string trim_(const std::string& s) {
    const std::size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
  }

  void check_rule_(const plan_rule& r, const std::string& where) const {
    if (r.layers.empty()) return;
    for (plan_component c : r.components)
      if (c == plan_component::embed || c == plan_component::lm_head)
        throw error(where + ": " + plan_component_name(c) + " belongs to no layer, so it takes no layer range");
  }

  static bool matches_(const plan_rule& r, const plan_target& t) {
    if (!r.layers.empty()) {
      if (t.layer < 0) return false;
      const bool in = std::any_of(r.layers.begin(), r.layers.end(),
                                  [&](const auto& ab) { return t.layer >= ab.first && t.layer <= ab.second; });
      if (!in) return false;
    }
    if (r.everything) return true;
    if (std::find(r.components.begin(), r.components.end(), t.component) != r.components.end()) return true;
    return std::any_of(r.globs.begin(), r.globs.end(), [&](const std::string& g) { return detail::glob_match(g, t.name); });
  }

  static precision_plan parse_json_(std::string_view text, const std::string& source) {
    // io::parse_json, not nlohmann's parse: it rejects what follows a NUL byte (nlohmann would stop
    // there and ignore it) and nesting deep enough that rule.dump() below would overflow the stack.
    const nlohmann::json j = io::parse_json(text, source);
    if (!j.is_object()) throw error(source + ": a JSON plan is an object with \"rules\" and/or \"default\"");
    precision_plan plan;
    plan.source_ = source;
    for (const auto& [key, value] : j.items())
      if (key != "rules" && key != "default")
        throw error(source + ": unknown key \"" + key + "\" (expected \"rules\" and \"default\")");
    if (j.contains("default")) {
      if (!j["default"].is_string()) throw error(source + ": \"default\" must be a format string");
      plan.default_ = detail::parse_rule_format(j["default"].get<std::string>(), source + ": default");
      plan.default_line_ = 0;
    }
    if (j.contains("rules")) {
      if (!j["rules"].is_array()) throw error(source + ": \"rules\" must be an array");
      int index = 0;
      for (const auto& rule : j["rules"]) {
        const std::string where = source + ": rule " + std::to_string(index);
        if (!rule.is_object()) throw error(where + ": must be an object");
        plan_rule r;
        r.line = index + 1;
        r.where = where;
        r.text = rule.dump();
        for (const auto& [key, value] : rule.items())
          if (key != "layers" && key != "select" && key != "format")
            throw error(where + ": unknown key \"" + key + "\" (expected \"layers\", \"select\" and \"format\")");
        if (rule.contains("layers")) {
          if (!rule["layers"].is_string()) throw error(where + ": \"layers\" must be a string such as \"0-11\"");
          r.layers = detail::parse_layer_ranges(rule["layers"].get<std::string>(), where);
        }
        if (!rule.contains("select")) throw error(where + ": missing \"select\"");
        const auto& sel = rule["select"];
        std::vector<std::string> items;
        if (sel.is_string()) items = detail::split_on(sel.get<std::string>(), ',');
        else if (sel.is_array())
          for (const auto& s : sel) {
            if (!s.is_string()) throw error(where + ": \"select\" entries must be strings");
            items.push_back(s.get<std::string>());
          }
        else throw error(where + ": \"select\" must be a string or an array of strings");
        for (const std::string& item : items) detail::add_selector(r, item, where);
        if (!rule.contains("format") || !rule["format"].is_string()) throw error(where + ": missing \"format\" string");
        r.format = detail::parse_rule_format(rule["format"].get<std::string>(), where);
        plan.check_rule_(r, where);
        plan.rules_.push_back(std::move(r));
        ++index;
      }
    }
    if (plan.rules_.empty() && !plan.default_) throw error(source + ": the plan has no rules and no default");
    return plan;
  }

  std::string source_;
  std::vector<plan_rule> rules_;
  std::optional<plan_format> default_;
  int default_line_ = 0;
};

}  // namespace qmr::quant
