// Error taxonomy for wrong answers of generative math tasks: calculation, reasoning, format or rounding, with the first wrong calculation and the first step that leaves the reference solution.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "extract.hpp"
#include "synth.hpp"

namespace qmr::eval {

// ---------------------------------------------------------------------------
// How an answer is classified (classify() applies the rules in this order):
//
//   none         normalize_answer(extracted) == normalize_answer(gold), as run_generative scores.
//   format       no extracted answer, or the output falls into a repetition loop
//                (find_repetition).
//   calculation  some arithmetic written in the output is wrong: every `<<expr=c>>` calculator
//                annotation and every inline equation `a op b [op c ...] = c` is evaluated
//                (ops + - * / x × ÷ −, parentheses, $, thousands commas, decimals, %). In a
//                truncated output an equation that the cut may have shortened is not judged.
//   format       the output hit the token limit (truncated: the answer may have been cut), or
//                the answer equals the gold in value but is written differently ("5.0" for "5").
//   rounding     every calculation is right and the answer is off from the gold by rounding only
//                (off_by_rounding).
//   reasoning    every calculation is right but the answer is wrong: the plan or the operands
//                are. Given the reference steps of a synthetic problem, the output's binary
//                calculations are compared with them in order and the first step that differs
//                is reported.
//
// A claimed result with k decimals is accepted when it is the value rounded or truncated to k
// decimals (1/3 = 0.33, 7/2 = 3); a value that is an integer must be claimed exactly.
// ---------------------------------------------------------------------------

enum class error_kind { none, calculation, reasoning, format, rounding };
inline constexpr std::size_t error_kind_count = 5;
inline constexpr std::array<error_kind, error_kind_count> all_error_kinds = {
    error_kind::none, error_kind::calculation, error_kind::reasoning, error_kind::format, error_kind::rounding};

inline std::string_view error_kind_name(error_kind k) {
  switch (k) {
    case error_kind::none: return "none";
    case error_kind::calculation: return "calculation";
    case error_kind::reasoning: return "reasoning";
    case error_kind::format: return "format";
    case error_kind::rounding: return "rounding";
  }
  throw error("unknown error_kind " + std::to_string(static_cast<int>(k)));
}

inline error_kind parse_error_kind(std::string_view name) {
  for (error_kind k : all_error_kinds)
    if (error_kind_name(k) == name) return k;
  throw error("unknown error kind '" + std::string(name) + "' (none, calculation, reasoning, format, rounding)");
}

// One piece of arithmetic found in an output.
struct calculation {
  std::string text;         // as written, e.g. "3*4=12" (an annotation without its << >>)
  std::size_t offset = 0;   // byte offset of `text` in the output
  bool annotation = false;  // inside <<...>>
  double value = 0;         // what the left side evaluates to
  double claimed = 0;       // what the output says it is
  bool correct = true;
  // When the left side is a single binary operation a op b: op in "+-*/", otherwise 0.
  char op = 0;
  double a = 0, b = 0;
};

// A run of text repeating with a short period (a generation loop).
struct repetition {
  std::size_t offset = 0, period = 0, length = 0;  // bytes; length counts every repeat
};

struct error_analysis {
  error_kind kind = error_kind::none;
  std::string detail;                // one line saying why, empty when correct
  std::string wrong_calculation;     // calculation: the first wrong one as written
  int first_divergent_step = -1;     // reasoning with reference steps: index of the first
                                     // reference step the output does not carry out; -1 = none
  int calculations = 0;              // calculations found and checked
};

namespace detail {

inline bool tax_digit(char c) { return c >= '0' && c <= '9'; }
inline bool tax_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
inline bool tax_space(char c) { return c == ' ' || c == '\t'; }

inline bool near(double x, double y) { return std::fabs(x - y) <= 1e-9 * std::max({1.0, std::fabs(x), std::fabs(y)}); }
inline bool is_integer(double v) { return near(v, std::round(v)); }
inline double round_to(double v, int decimals) { const double s = std::pow(10.0, decimals); return std::round(v * s) / s; }
inline double trunc_to(double v, int decimals) { const double s = std::pow(10.0, decimals); return std::trunc(v * s + (v < 0 ? -1e-9 : 1e-9)) / s; }

struct number {
  double value = 0;  // a percent already divided by 100
  int decimals = 0;  // digits written after the point (a percent adds 2)
  bool percent = false;
};

// Recursive descent over one line: expr := term {(+|-) term}; term := factor {(*|/|x|×|÷) factor};
// factor := [-] (number | '(' expr ')'). Spaces and tabs between tokens; never a newline.
class arithmetic_reader {
 public:
  arithmetic_reader(std::string_view s, std::size_t at) : s_(s), i_(at) {}
  std::size_t pos() const { return i_; }
  int ops() const { return ops_; }
  char single_op() const { return op_; }
  double single_a() const { return a_; }
  double single_b() const { return b_; }

  // A number: [$] digits [,ddd]... [.digits] [%], or [$] .digits [%].
  std::optional<number> read_number() {
    std::size_t j = i_;
    if (j < s_.size() && s_[j] == '$') ++j;
    std::string clean;
    while (j < s_.size() && tax_digit(s_[j])) clean += s_[j++];
    // Thousands separators: a comma then exactly three digits (not "3,4" or "1,2345").
    while (!clean.empty() && clean.size() <= 15 && j + 3 < s_.size() && s_[j] == ',' && tax_digit(s_[j + 1]) &&
           tax_digit(s_[j + 2]) && tax_digit(s_[j + 3]) && (j + 4 >= s_.size() || !tax_digit(s_[j + 4]))) {
      clean.append(s_.substr(j + 1, 3));
      j += 4;
    }
    number n;
    if (j + 1 < s_.size() && s_[j] == '.' && tax_digit(s_[j + 1])) {
      clean += s_[j++];
      while (j < s_.size() && tax_digit(s_[j])) clean += s_[j++], ++n.decimals;
    }
    if (clean.empty() || clean == ".") return std::nullopt;
    n.value = std::strtod(clean.c_str(), nullptr);
    if (j < s_.size() && s_[j] == '%') n.value /= 100, n.decimals += 2, n.percent = true, ++j;
    i_ = j;
    return n;
  }

  std::optional<double> read_expr() {
    auto v = read_term();
    while (v) {
      skip();
      std::size_t width = 0;
      const char op = peek_op("+-", width);
      if (!op) break;
      const std::size_t back = i_;
      i_ += width;
      auto w = read_term();
      if (!w) { i_ = back; break; }
      note(op, *v, *w);
      v = op == '+' ? *v + *w : *v - *w;
    }
    return v;
  }

 private:
  std::optional<double> read_term() {
    auto v = read_factor();
    while (v) {
      skip();
      std::size_t width = 0;
      const char op = peek_op("*/", width);
      if (!op) break;
      const std::size_t back = i_;
      i_ += width;
      auto w = read_factor();
      if (!w) { i_ = back; break; }
      if (op == '/' && *w == 0) return std::nullopt;
      note(op, *v, *w);
      v = op == '*' ? *v * *w : *v / *w;
    }
    return v;
  }

  std::optional<double> read_factor() {
    skip();
    const std::size_t start = i_;
    bool negative = false;
    if (std::size_t width = 0; peek_op("-", width)) negative = true, i_ += width, skip();
    std::optional<double> v;
    if (i_ < s_.size() && s_[i_] == '(') {
      ++i_;
      v = read_expr();
      skip();
      if (!v || i_ >= s_.size() || s_[i_] != ')') return i_ = start, std::nullopt;
      ++i_;
    } else if (auto n = read_number()) {
      v = n->value;
    } else {
      return i_ = start, std::nullopt;
    }
    return negative ? -*v : *v;
  }

  // The operator at i_ among `which` ('*' stands for * x × ·, '/' for / ÷, '-' for - −); 0 if none.
  // "x" counts only before a number, so that "3x + 5" is algebra, not multiplication.
  char peek_op(std::string_view which, std::size_t& width) const {
    const std::string_view r = s_.substr(i_);
    const auto has = [&](char op) { return which.find(op) != std::string_view::npos; };
    if (r.empty()) return 0;
    if (has('+') && r[0] == '+') return width = 1, '+';
    if (has('-') && r[0] == '-') return width = 1, '-';
    if (has('-') && r.starts_with("\xe2\x88\x92")) return width = 3, '-';  // U+2212 minus
    if (has('*') && r[0] == '*') return width = 1, '*';
    if (has('*') && (r.starts_with("\xc3\x97") || r.starts_with("\xc2\xb7"))) return width = 2, '*';  // × ·
    if (has('/') && r[0] == '/') return width = 1, '/';
    if (has('/') && r.starts_with("\xc3\xb7")) return width = 2, '/';  // ÷
    if (has('*') && (r[0] == 'x' || r[0] == 'X')) {
      std::size_t k = 1;
      while (k < r.size() && tax_space(r[k])) ++k;
      if (k < r.size() && (tax_digit(r[k]) || r[k] == '$' || r[k] == '(')) return width = 1, '*';
    }
    return 0;
  }

  void skip() {
    while (i_ < s_.size() && tax_space(s_[i_])) ++i_;
  }
  void note(char op, double a, double b) {
    if (++ops_ == 1) op_ = op, a_ = a, b_ = b;
  }

  std::string_view s_;
  std::size_t i_;
  int ops_ = 0;
  char op_ = 0;
  double a_ = 0, b_ = 0;
};

// Whether `claimed` states `value`: exactly for an integer value, else rounded or truncated
// to the claimed number's decimals; a percent may also be read as a plain number ("5/20*100 = 25%").
inline bool states(double value, const number& claimed) {
  const auto fits = [&](double c, int decimals) {
    if (is_integer(value)) return near(value, c);
    return near(round_to(value, decimals), c) || near(trunc_to(value, decimals), c);
  };
  if (fits(claimed.value, claimed.decimals)) return true;
  return claimed.percent && fits(claimed.value * 100, claimed.decimals - 2);
}

// The width of a binary operator sign ending at byte j (+ - * / × ÷ · −), 0 if none.
inline std::size_t op_sign_before(std::string_view s, std::size_t j) {
  if (j >= 1 && std::string_view("+-*/").find(s[j - 1]) != std::string_view::npos) return 1;
  for (std::string_view sign : {"\xc3\x97", "\xc3\xb7", "\xc2\xb7", "\xe2\x88\x92"})
    if (s.substr(0, j).ends_with(sign)) return sign.size();
  return 0;
}

// An inline equation may start at i when nothing before it binds to it: no letter, digit, point,
// comma, ')' or '^' right before it, and no binary operator that has an operand of its own
// ("x - 5 + 2 = -3" must not be read as "5 + 2 = -3"; "**5 + 3 = 8**" may be).
inline bool may_start(std::string_view s, std::size_t i) {
  std::size_t j = i;
  while (j > 0 && tax_space(s[j - 1])) --j;
  if (j == 0) return true;
  const char c = s[j - 1];
  if (c == ')' || c == '^') return false;
  if (j == i && (tax_alpha(c) || tax_digit(c) || c == '.' || c == ',' || c == '$')) return false;
  if (const std::size_t w = op_sign_before(s, j)) {
    std::size_t k = j - w;
    while (k > 0 && tax_space(s[k - 1])) --k;
    return !(k > 0 && (tax_alpha(s[k - 1]) || tax_digit(s[k - 1]) || s[k - 1] == ')' || s[k - 1] == '.' || s[k - 1] == '%'));
  }
  return !(j == i && static_cast<unsigned char>(c) >= 0x80);
}

// Reads "expr = number" at `at` (optionally the whole of [at, end)); fills `c` when the left side
// has at least one operation.
inline bool read_equation(std::string_view s, std::size_t at, std::size_t end, bool whole, calculation& c) {
  const std::string_view line = s.substr(0, end);
  arithmetic_reader lhs(line, at);
  const auto value = lhs.read_expr();
  if (!value || lhs.ops() == 0) return false;
  std::size_t i = lhs.pos();
  while (i < end && tax_space(s[i])) ++i;
  if (i >= end || s[i] != '=') return false;
  ++i;
  while (i < end && tax_space(s[i])) ++i;
  // The claimed result: one number, perhaps negative.
  bool negative = false;
  if (i < end && s[i] == '-') negative = true, ++i;
  else if (line.substr(i).starts_with("\xe2\x88\x92")) negative = true, i += 3;
  arithmetic_reader rhs(line, i);
  auto n = rhs.read_number();
  if (!n) return false;
  if (negative) n->value = -n->value;
  c.claimed = n->value;
  c.correct = detail::states(*value, *n);
  const std::size_t rhs_start = i;
  i = rhs.pos();
  // "3+4=7+2=9" (a running total) and "3+4=2+5" (an identity) both read as right; an identity
  // claims its whole right side ("9 * 122 = 9*122=<<9*122=1098>>" is one step, not two).
  if (!c.correct && !negative) {
    arithmetic_reader more(line, rhs_start);
    const auto whole_rhs = more.read_expr();
    if (whole_rhs && more.ops() > 0 && near(*whole_rhs, *value)) c.correct = true, c.claimed = *whole_rhs, i = more.pos();
  }
  if (whole) {
    while (i < end && tax_space(s[i])) ++i;
    if (i != end) return false;
  }
  c.offset = at;
  c.text = std::string(s.substr(at, i - at));
  c.value = *value;
  if (lhs.ops() == 1) c.op = lhs.single_op(), c.a = lhs.single_a(), c.b = lhs.single_b();
  return true;
}

}  // namespace detail

// Every calculator annotation and inline equation of `output`, in order of appearance.
inline std::vector<calculation> find_calculations(std::string_view output) {
  std::vector<calculation> out;
  std::string masked(output);  // annotations blanked out, so that inline scanning skips them
  for (std::size_t at = output.find("<<"); at != std::string_view::npos; at = output.find("<<", at + 2)) {
    const std::size_t close = output.find(">>", at + 2);
    if (close == std::string_view::npos) break;
    const std::size_t newline = output.find('\n', at);
    if (newline < close) continue;  // an unclosed "<<" on this line
    calculation c;
    if (detail::read_equation(output, at + 2, close, true, c)) {
      c.annotation = true;
      out.push_back(std::move(c));
    }
    for (std::size_t k = at; k < close + 2; ++k) masked[k] = '#';
  }
  const std::string_view m = masked;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const auto number_at = [&](std::size_t k) {
      return k < m.size() && (detail::tax_digit(m[k]) || m[k] == '$' || (m[k] == '.' && k + 1 < m.size() && detail::tax_digit(m[k + 1])));
    };
    const bool starts = number_at(i) || m[i] == '(' || (m[i] == '-' && (number_at(i + 1) || (i + 1 < m.size() && m[i + 1] == '(')));
    if (!starts || !detail::may_start(m, i)) continue;
    std::size_t end = m.find('\n', i);
    if (end == std::string_view::npos) end = m.size();
    calculation c;
    if (detail::read_equation(m, i, end, false, c)) {
      c.text = std::string(output.substr(c.offset, c.text.size()));
      const std::size_t eq = m.find('=', i);
      out.push_back(std::move(c));
      i = eq;  // the result may begin the next equation ("3+4=7+2=9")
      continue;
    }
    while (i + 1 < m.size() && (detail::tax_digit(m[i + 1]) || m[i + 1] == '.' || m[i + 1] == ',')) ++i;  // next token
  }
  std::sort(out.begin(), out.end(), [](const calculation& x, const calculation& y) { return x.offset < y.offset; });
  return out;
}

// The first place where `text` repeats a unit of `period` bytes at least `min_repeats` times over
// at least `min_bytes` bytes (a unit of only whitespace does not count); the shortest period wins.
inline std::optional<repetition> find_repetition(std::string_view text, std::size_t min_bytes = 40,
                                                 std::size_t min_repeats = 3, std::size_t max_period = 256) {
  const std::size_t n = text.size();
  for (std::size_t p = 1; p <= max_period && p * min_repeats <= n; ++p) {
    std::size_t run = 0;  // text[i - run + 1 .. i] each equal to the byte p later
    for (std::size_t i = 0; i + p < n; ++i) {
      run = text[i] == text[i + p] ? run + 1 : 0;
      if (run + p >= min_bytes && run >= (min_repeats - 1) * p) {
        const std::size_t start = i + 1 - run;
        const std::string_view unit = text.substr(start, p);
        if (unit.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;
        std::size_t end = i + p + 1;
        while (end < n && text[end] == text[end - p]) ++end;
        return repetition{start, p, end - start};
      }
    }
  }
  return std::nullopt;
}

namespace detail {
// The whole of `s` as a number ("1,200", "-3.5", "$4"), after normalize_answer.
inline std::optional<number> parse_answer(std::string_view s) {
  const std::string t = normalize_answer(s);
  if (t.empty()) return std::nullopt;
  const bool negative = t[0] == '-';
  arithmetic_reader r(t, negative ? 1 : 0);
  auto n = r.read_number();
  if (!n || r.pos() != t.size()) return std::nullopt;
  if (negative) n->value = -n->value;
  return n;
}
}  // namespace detail

// Whether `predicted` differs from `gold` by rounding alone: one of them is not an integer and
// they are less than 1 apart (3.5 for 4, 4 for 3.5), or, both non-integers, they agree when
// rounded or truncated to the coarser one's decimals (3.33 for 3.3).
inline bool off_by_rounding(std::string_view predicted, std::string_view gold) {
  const auto p = detail::parse_answer(predicted), g = detail::parse_answer(gold);
  if (!p || !g || detail::near(p->value, g->value)) return false;
  const bool pi = detail::is_integer(p->value), gi = detail::is_integer(g->value);
  if (pi && gi) return false;
  if (pi != gi) return std::fabs(p->value - g->value) < 1;
  const int k = std::min(p->decimals, g->decimals);
  const auto same = [&](auto f) { return detail::near(f(p->value, k), f(g->value, k)); };
  return same(detail::round_to) || same(detail::trunc_to);
}

namespace detail {
inline bool carries_out(const calculation& c, const step& s) {
  if (c.op != s.op || !near(c.claimed, static_cast<double>(s.result)) || !c.correct) return false;
  const double a = static_cast<double>(s.a), b = static_cast<double>(s.b);
  if (near(c.a, a) && near(c.b, b)) return true;
  return (s.op == '+' || s.op == '*') && near(c.a, b) && near(c.b, a);
}
inline std::string number_text(double v) {
  nlohmann::json j = v;
  if (is_integer(v) && std::fabs(v) < 1e15) j = static_cast<std::int64_t>(std::llround(v));
  return j.dump();
}
}  // namespace detail

// Classifies one answer. `output` is the generated text (cut at stop strings), `extracted` the
// answer taken from it (empty when none), `gold` the reference answer, `truncated` whether
// generation hit the token limit; `reference_steps` the structured solution of a synthetic problem.
inline error_analysis classify(std::string_view output, std::string_view extracted, std::string_view gold, bool truncated,
                               std::span<const step> reference_steps = {}) {
  error_analysis r;
  const std::vector<calculation> calcs = find_calculations(output);
  r.calculations = static_cast<int>(calcs.size());
  const std::string pred = normalize_answer(extracted), want = normalize_answer(gold);
  if (!pred.empty() && pred == want) return r;

  const auto loop = find_repetition(output);
  const auto loop_text = [&] {
    return "repetition loop: " + std::to_string(loop->length) + " bytes repeating every " + std::to_string(loop->period) +
           " from byte " + std::to_string(loop->offset) + " (\"" +
           std::string(output.substr(loop->offset, std::min<std::size_t>(loop->period, 40))) + "\")";
  };
  if (extracted.empty() || loop) {
    r.kind = error_kind::format;
    if (loop) r.detail = loop_text();
    else r.detail = truncated ? "no answer: truncated at the token limit" : "no extractable answer";
    return r;
  }
  // A wrong calculation is certain even in a truncated output, except one that the cut may have
  // ended early ("... 662*338 = 2237" at the very end).
  const std::size_t kept = output.find_last_not_of(" \t\r\n") + 1;
  for (const calculation& c : calcs)
    if (!c.correct && !(truncated && c.offset + c.text.size() >= kept)) {
      r.kind = error_kind::calculation;
      r.wrong_calculation = c.text;
      r.detail = "'" + c.text + "' is wrong: the left side is " + detail::number_text(c.value);
      return r;
    }
  if (truncated) {
    r.kind = error_kind::format;
    r.detail = "truncated at the token limit";
    return r;
  }
  const auto p = detail::parse_answer(extracted), g = detail::parse_answer(gold);
  if (p && g && detail::near(p->value, g->value)) {
    r.kind = error_kind::format;
    r.detail = "'" + pred + "' equals the gold '" + want + "' in value but not as written";
    return r;
  }
  if (off_by_rounding(pred, want)) {
    r.kind = error_kind::rounding;
    r.detail = "'" + pred + "' is '" + want + "' up to rounding";
    return r;
  }
  r.kind = error_kind::reasoning;
  if (reference_steps.empty()) {
    r.detail = "the arithmetic is right but the answer is not";
    return r;
  }
  // Binary calculations in order, one per distinct step (an annotation repeated inline counts once).
  std::vector<const calculation*> done;
  for (const calculation& c : calcs)
    if (c.op && !(!done.empty() && done.back()->annotation != c.annotation && done.back()->op == c.op && detail::near(done.back()->a, c.a) &&
                  detail::near(done.back()->b, c.b) && detail::near(done.back()->claimed, c.claimed)))
      done.push_back(&c);
  for (std::size_t i = 0; i < reference_steps.size(); ++i) {
    if (i >= done.size()) {
      r.first_divergent_step = static_cast<int>(i);
      r.detail = "step " + std::to_string(i + 1) + " (" + step_text(reference_steps[i]) + ") is never carried out";
      return r;
    }
    if (!detail::carries_out(*done[i], reference_steps[i])) {
      r.first_divergent_step = static_cast<int>(i);
      r.detail = "step " + std::to_string(i + 1) + " should be " + step_text(reference_steps[i]) + ", the output has '" +
                 done[i]->text + "'";
      return r;
    }
  }
  r.detail = "every reference step is carried out, but the final answer '" + pred + "' is not the gold '" + want +
             "'";
  return r;
}

inline nlohmann::json to_json(const error_analysis& a) {
  nlohmann::json j = {{"kind", error_kind_name(a.kind)}, {"detail", a.detail}, {"calculations", a.calculations}};
  if (!a.wrong_calculation.empty()) j["wrong_calculation"] = a.wrong_calculation;
  if (a.first_divergent_step >= 0) j["first_divergent_step"] = a.first_divergent_step;
  return j;
}

// Answers counted by kind, for the aggregates of a results file.
struct error_counts {
  std::array<std::size_t, error_kind_count> n{};
  void add(error_kind k) { ++n[static_cast<std::size_t>(k)]; }
  std::size_t operator[](error_kind k) const { return n[static_cast<std::size_t>(k)]; }
  std::size_t wrong() const { return n[1] + n[2] + n[3] + n[4]; }
};

// {"none": 7, "calculation": 1, "reasoning": 2, "format": 0, "rounding": 0}
inline nlohmann::json to_json(const error_counts& c) {
  nlohmann::json j = nlohmann::json::object();
  for (error_kind k : all_error_kinds) j[std::string(error_kind_name(k))] = c[k];
  return j;
}

}  // namespace qmr::eval
