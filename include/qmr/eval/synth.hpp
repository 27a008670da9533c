// Synthetic math problems by operation type and complexity level, each with a GSM8K-style worked answer whose every calculator annotation is an exactly checkable step.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"

namespace qmr::eval {

// ---------------------------------------------------------------------------
// What a generated problem is
//
//   question  "Tom has 12 apples. He buys 3 bags with 4 apples each. How many apples does he have now?"
//   answer    "He buys 3*4=<<3*4=12>>12 apples.\nNow he has 12+12=<<12+12=24>>24 apples.\n#### 24"
//   steps     {'*', 3, 4, 12}, {'+', 12, 12, 24}
//
// One answer line per step, each with exactly one calculator annotation `a op b=<<a op b=c>>c`
// equal to that step, then the line `#### N` with N = final_answer = the last step's result.
// check_problem() verifies all of it.
//
// Types: addition, subtraction, multiplication, division (mixed: at least two of them);
// equation: linear equations and small systems; percent: percentages (always b*p, then /100),
// fractions, ratios, map scales; average: means, missing values, combined averages; geometry:
// perimeters, areas, volumes, triangle angles (which make 180 degrees); probability: expected
// counts "out of n" and integer percents; comparison: who has more and by how much, if-then.
//
// Level = number of reasoning steps (level_steps()):
//   1  one step            2  two steps           3  three or four steps
//   4  five or six steps, built from sub-problems whose results feed later steps
//   5  five to seven steps of abstract or algebraic work (variables, equations, substitution)
//
// Numbers:
//   * every number written in a question is in [0, max_operand] (a few templates also write
//     fixed digits no larger than synth_min_operand: "n^4", "1 in {k}", "x : {b} = {a} : 1");
//   * every step operand and result is an integer in [0, synth_value_limit): divisions are
//     exact, nothing is negative, for every type (equations included: their solutions and
//     every intermediate value are non-negative by construction);
//   * factors meant to be "small" (boxes, rows, days) stay within the times table (12).
//
// Forms: about bare_percent of problems are bare ("What is (12 + 3) * 4?", "Solve for x:
// 3x + 5 = 26."), the rest word problems. Word problems and the bare forms of the other types
// come from the table of templates below; bare arithmetic (levels 1-4) from random expression
// trees. A (type, level) with only one form, or whose other form cannot work at a small
// max_operand, uses the one that works.
//
// Determinism: problems depend only on (seed, index, options, synth_version). Integers are
// drawn from std::mt19937_64 (whose output the standard fixes) with uniform_int() below,
// never std::uniform_int_distribution (whose algorithm differs between standard libraries).
// ---------------------------------------------------------------------------

// Bump whenever the problems generated for a given seed and options change.
inline constexpr int synth_version = 1;

// No step operand or result reaches this (|values| < 10^6: 6-digit arithmetic at most).
inline constexpr std::int64_t synth_value_limit = 1'000'000;
// max_operand bounds: below 10 some (type, level) pairs have no valid problem at all (e.g. two
// triangle angles and their sum, or a ratio with a whole number of parts); above 10000 most
// products would pass synth_value_limit.
inline constexpr std::int64_t synth_min_operand = 10;
inline constexpr std::int64_t synth_max_operand = 10'000;
// The most problems one make_problems() call returns: all of them are held in memory (about
// 0.5 KB each), and a count past what memory holds failed as std::length_error
// "vector::reserve" or std::bad_alloc. The default model trained on 3 million.
inline constexpr std::size_t synth_max_problems = 100'000'000;

enum class op_type {
  addition,
  subtraction,
  multiplication,
  division,
  mixed,
  linear_equation,
  percent_ratio,
  average,
  geometry,
  probability,
  comparison,
};

inline constexpr std::array<op_type, 11> all_op_types = {
    op_type::addition,      op_type::subtraction, op_type::multiplication, op_type::division,
    op_type::mixed,         op_type::linear_equation, op_type::percent_ratio, op_type::average,
    op_type::geometry,      op_type::probability, op_type::comparison};

// The names used on the command line and in JSON, indexed by op_type.
inline constexpr std::array<std::string_view, 11> op_type_names = {
    "addition", "subtraction", "multiplication", "division", "mixed",      "equation",
    "percent",  "average",     "geometry",       "probability", "comparison"};

inline std::string_view op_type_name(op_type t) {
  const auto i = static_cast<std::size_t>(t);
  check(i < op_type_names.size(), "op_type " + std::to_string(i) + " is out of range");
  return op_type_names[i];
}

inline std::string op_type_list() {
  std::string s;
  for (std::string_view n : op_type_names) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

inline op_type parse_op_type(std::string_view name) {
  for (std::size_t i = 0; i < op_type_names.size(); ++i)
    if (op_type_names[i] == name) return all_op_types[i];
  throw error("unknown problem type '" + std::string(name) + "' (expected one of " + op_type_list() + ")");
}

namespace detail {
// "a,b,c" -> {"a", "b", "c"}; an empty item (",," or a trailing comma) is an error.
inline std::vector<std::string_view> split_list(std::string_view text, std::string_view what) {
  std::vector<std::string_view> items;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string_view item = text.substr(start, end - start);
    if (item.empty()) throw error("empty item in the list of " + std::string(what) + " '" + std::string(text) + "'");
    items.push_back(item);
    if (end == text.size()) return items;
    start = end + 1;
  }
}
}  // namespace detail

// "addition,percent" -> {addition, percent_ratio}; "all" -> every type. Unknown or repeated names are errors.
inline std::vector<op_type> parse_op_types(std::string_view text) {
  if (text == "all") return {all_op_types.begin(), all_op_types.end()};
  std::vector<op_type> types;
  for (std::string_view name : detail::split_list(text, "problem types")) {
    const op_type t = parse_op_type(name);
    if (std::find(types.begin(), types.end(), t) != types.end())
      throw error("problem type '" + std::string(name) + "' is listed twice");
    types.push_back(t);
  }
  return types;
}

// "1,3" -> {1, 3}; levels are 1 to 5, each at most once.
inline std::vector<int> parse_levels(std::string_view text) {
  std::vector<int> levels;
  for (std::string_view item : detail::split_list(text, "levels")) {
    if (item.size() != 1 || item[0] < '1' || item[0] > '5')
      throw error("level '" + std::string(item) + "' is not one of 1, 2, 3, 4, 5");
    const int level = item[0] - '0';
    if (std::find(levels.begin(), levels.end(), level) != levels.end())
      throw error("level " + std::string(item) + " is listed twice");
    levels.push_back(level);
  }
  return levels;
}

struct level_range {
  int min_steps, max_steps;
};

// The documented number of steps of each level.
inline level_range level_steps(int level) {
  check(level >= 1 && level <= 5, "level " + std::to_string(level) + " is not one of 1, 2, 3, 4, 5");
  constexpr std::array<level_range, 5> ranges = {{{1, 1}, {2, 2}, {3, 4}, {5, 6}, {5, 7}}};
  return ranges[static_cast<std::size_t>(level - 1)];
}

// max_operand when the options leave it 0: bigger numbers at the levels with more steps, so
// that long problems are not all small-number ones; level 5 keeps level 4's.
inline std::int64_t default_max_operand(int level) {
  level_steps(level);  // validates
  constexpr std::array<std::int64_t, 5> defaults = {100, 100, 200, 500, 500};
  return defaults[static_cast<std::size_t>(level - 1)];
}

struct step {
  char op;  // '+', '-', '*' or '/'
  std::int64_t a, b, result;
  bool operator==(const step&) const = default;
};

struct problem {
  std::string question, answer;  // answer: one annotated line per step, then "#### N"
  op_type type;
  int level;
  std::vector<step> steps;
  std::int64_t final_answer;
  bool operator==(const problem&) const = default;
};

struct synth_options {
  std::vector<op_type> types;  // empty = all
  std::vector<int> levels;     // empty = 1..5
  std::int64_t max_operand = 0;  // 0 = default_max_operand(level)
  std::uint64_t seed = 0;
};

// "a op b=c", the text of a step inside its annotation.
inline std::string step_text(const step& s) {
  return std::to_string(s.a) + s.op + std::to_string(s.b) + "=" + std::to_string(s.result);
}

// a op b for exact integer arithmetic, or false (unknown op, division by zero or with a
// remainder). The caller keeps |a|, |b| < 2^31 so that nothing overflows.
inline bool apply_op(char op, std::int64_t a, std::int64_t b, std::int64_t& result) {
  switch (op) {
    case '+': result = a + b; return true;
    case '-': result = a - b; return true;
    case '*': result = a * b; return true;
    case '/':
      if (b == 0 || a % b != 0) return false;
      result = a / b;
      return true;
    default: return false;
  }
}

namespace detail {

// Share of bare problems: GSM8K-like stories are the target, and a minority of bare
// expressions and equations teaches the arithmetic without the story around it.
inline constexpr int bare_percent = 30;
// Largest "small" factor (boxes per crate, rows, days): the times table, so products stay
// in a range a small model can learn; larger magnitudes come from max_operand.
inline constexpr std::int64_t small_factor = 12;
// Draws per problem before giving up: every (type, level) succeeds within a few thousand
// draws even at max_operand 10 (see form_patience); a draw costs microseconds.
inline constexpr int max_attempts = 20'000;
// Failed attempts before make_problem also tries the other form (some forms cannot work at
// a small max_operand): about 8 times the attempts that the strictest feasible (type, level,
// form) needs on average at max_operand 10 (percent level 4 bare, about 1 in 250).
inline constexpr int form_patience = 2'000;
// Bound on every value inside a template expression: |v| < 2^31, so a product of two never overflows.
inline constexpr std::int64_t expr_bound = std::int64_t{1} << 31;

// ---------------------------------------------------------------------------
// Random numbers (identical on every platform)
// ---------------------------------------------------------------------------

// Uniform in [lo, hi] (lo <= hi) by rejection on the raw 64-bit output: x is accepted when
// x >= 2^64 mod span, leaving a multiple of span equally likely values.
inline std::int64_t uniform_int(std::mt19937_64& rng, std::int64_t lo, std::int64_t hi) {
  const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
  if (span == 0) return static_cast<std::int64_t>(rng());  // the whole 64-bit range
  const std::uint64_t threshold = (0 - span) % span;
  std::uint64_t x = rng();
  while (x < threshold) x = rng();
  return lo + static_cast<std::int64_t>(x % span);
}

inline std::size_t pick_index(std::mt19937_64& rng, std::size_t n) {
  return static_cast<std::size_t>(uniform_int(rng, 0, static_cast<std::int64_t>(n) - 1));
}

// SplitMix64's finalizer: spreads (seed, index) into well-separated generator seeds.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace detail

// The generator seed of problem `index` of make_problems(): each problem has its own stream,
// so problem i is the same whatever n is, problems can be generated in any order, and runs
// that differ only in their types or levels do not repeat each other's names and numbers.
inline std::uint64_t problem_seed(std::uint64_t seed, std::uint64_t index, op_type type, int level) {
  const auto kind = static_cast<std::uint64_t>(type) * 8 + static_cast<std::uint64_t>(level);
  return detail::mix64(detail::mix64(detail::mix64(seed) + index) + kind);
}

namespace detail {

// Thrown inside one generation attempt when the drawn numbers break a rule (an empty range,
// an inexact division, a negative or too large value, a failed condition); make_problem
// discards the attempt and draws again. Never escapes this header.
struct rejected {};

// ---------------------------------------------------------------------------
// Word tables
// ---------------------------------------------------------------------------

struct person {
  std::string_view name;
  bool female;
};

inline constexpr person people[] = {
    {"Tom", false},  {"Ann", true},   {"Ben", false},   {"Mia", true},  {"Jack", false}, {"Emma", true},
    {"Noah", false}, {"Zoe", true},   {"Leo", false},   {"Ava", true},  {"Max", false},  {"Ella", true},
    {"Omar", false}, {"Nina", true},  {"Ravi", false},  {"Lena", true}, {"Carlos", false}, {"Sofia", true},
    {"Kenji", false}, {"Aisha", true}, {"Liam", false}, {"Maya", true}, {"Sam", false},  {"Lily", true}};

// A countable object and what it is packed in.
struct thing {
  std::string_view one, many, box, boxes;
};

inline constexpr thing things[] = {
    {"apple", "apples", "bag", "bags"},          {"marble", "marbles", "jar", "jars"},
    {"sticker", "stickers", "sheet", "sheets"},  {"pencil", "pencils", "box", "boxes"},
    {"cookie", "cookies", "tray", "trays"},      {"card", "cards", "pack", "packs"},
    {"egg", "eggs", "carton", "cartons"},        {"shell", "shells", "bucket", "buckets"},
    {"orange", "oranges", "crate", "crates"},    {"balloon", "balloons", "pack", "packs"},
    {"stamp", "stamps", "album", "albums"},      {"book", "books", "shelf", "shelves"},
    {"toy car", "toy cars", "box", "boxes"},     {"muffin", "muffins", "basket", "baskets"}};

struct length_unit {
  std::string_view one, many;
};

inline constexpr length_unit units[] = {
    {"meter", "meters"}, {"foot", "feet"}, {"inch", "inches"}, {"centimeter", "centimeters"}, {"yard", "yards"}};

// The words of one problem: three different people, two different things, one unit.
struct cast {
  std::array<const person*, 3> who;
  const thing* item;
  const thing* item2;
  const length_unit* unit;
};

inline cast draw_cast(std::mt19937_64& rng) {
  constexpr std::size_t n_people = std::size(people), n_things = std::size(things);
  cast c{};
  for (std::size_t k = 0; k < 3; ++k) {
    const person* p;
    do p = &people[pick_index(rng, n_people)];
    while (std::find(c.who.begin(), c.who.begin() + static_cast<std::ptrdiff_t>(k), p) !=
           c.who.begin() + static_cast<std::ptrdiff_t>(k));
    c.who[k] = p;
  }
  c.item = &things[pick_index(rng, n_things)];
  do c.item2 = &things[pick_index(rng, n_things)];
  while (c.item2 == c.item);
  c.unit = &units[pick_index(rng, std::size(units))];
  return c;
}

// ---------------------------------------------------------------------------
// Problem templates
//
// A template is a var spec, a question and answer lines (separated by '\n').
//
// Var spec: space-separated items, evaluated left to right:
//   x=lo..hi   uniform integer in [lo, hi] (an empty range rejects the draw)
//   x=e1|e2    one of the expressions
//   x=e        the expression's value
//   ?e         rejects the draw unless e is non-zero
// Variables are single lowercase letters. Expressions: integers, variables, M (max_operand),
// S (min(M, small_factor)), #k (result of step k, 1-based), @ (the last step's result),
// min(e,e), max(e,e), gcd(e,e), parentheses, * / % (integer division), + -, and comparisons
// == != < > <= >= (1 or 0), with the usual precedence.
//
// Text: {x} a variable, {#k} / {@} a step result, {P} {Q} {R} three different people and
// {P:he} {P:He} {P:his} {P:His} {P:him} their pronouns, {item} {items} {box} {boxes} a thing
// and its container, {item2} {items2} a second thing, {unit} {unit1} a length unit (plural,
// singular), [[one|other]] a random choice of text. Every variable written in the question
// must come out in [0, M], or the draw is rejected.
//
// Answer lines: each holds exactly one step, [x op y], with x and y a variable, #k, @ or an
// integer, which becomes "x op y=<<x op y=r>>r". A line starting "?e " is kept only when e
// is non-zero (if-then problems; #k counts kept lines only).
// ---------------------------------------------------------------------------

enum class form { word, bare };

struct problem_template {
  op_type type;
  int level;
  form kind;
  std::string_view vars, question, answer;
};

inline error template_error(const problem_template& t, const std::string& what) {
  return error("synth template (" + std::string(op_type_name(t.type)) + " level " + std::to_string(t.level) +
               ", \"" + std::string(t.question.substr(0, 48)) + "...\"): " + what);
}

inline std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = std::min(text.find(sep, start), text.size());
    parts.push_back(text.substr(start, end - start));
    if (end == text.size()) return parts;
    start = end + 1;
  }
}

inline bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
inline bool is_dec_digit(char c) { return c >= '0' && c <= '9'; }

// The values a template sees while it is instantiated.
struct scope {
  std::array<std::int64_t, 26> var{};
  std::array<bool, 26> has{};
  std::int64_t max_operand = 0;
  std::vector<step> steps;
};

inline std::int64_t bounded(std::int64_t v) {
  if (v >= expr_bound || v <= -expr_bound) throw rejected{};
  return v;
}

// Recursive-descent evaluator of the expression language above.
class expr_reader {
 public:
  expr_reader(std::string_view text, const scope& s, const problem_template& t) : text_(text), s_(s), t_(t) {}

  std::int64_t read() {
    const std::int64_t v = comparison();
    if (i_ != text_.size()) fail("unexpected '" + std::string(text_.substr(i_)) + "'");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw template_error(t_, "expression '" + std::string(text_) + "': " + what);
  }
  bool eat(std::string_view token) {
    if (text_.substr(i_, token.size()) != token) return false;
    i_ += token.size();
    return true;
  }
  std::int64_t comparison() {
    const std::int64_t l = sum();
    if (eat("==")) return l == sum();
    if (eat("!=")) return l != sum();
    if (eat("<=")) return l <= sum();
    if (eat(">=")) return l >= sum();
    if (eat("<")) return l < sum();
    if (eat(">")) return l > sum();
    return l;
  }
  std::int64_t sum() {
    std::int64_t v = product();
    while (true) {
      if (eat("+")) v = bounded(v + product());
      else if (eat("-")) v = bounded(v - product());
      else return v;
    }
  }
  std::int64_t product() {
    std::int64_t v = primary();
    while (true) {
      if (eat("*")) {
        v = bounded(v * primary());
      } else if (eat("/") || eat("%")) {
        const bool mod = text_[i_ - 1] == '%';
        const std::int64_t d = primary();
        if (d == 0) throw rejected{};
        v = mod ? v % d : v / d;
      } else {
        return v;
      }
    }
  }
  std::int64_t primary() {
    if (eat("(")) {
      const std::int64_t v = comparison();
      if (!eat(")")) fail("missing ')'");
      return v;
    }
    for (const std::string_view f : {"min(", "max(", "gcd("})
      if (eat(f)) {
        const std::int64_t a = comparison();
        if (!eat(",")) fail(std::string(f) + ") needs two arguments");
        const std::int64_t b = comparison();
        if (!eat(")")) fail("missing ')'");
        return f == "min(" ? std::min(a, b) : f == "max(" ? std::max(a, b) : std::gcd(a, b);
      }
    if (eat("M")) return s_.max_operand;
    if (eat("S")) return std::min(s_.max_operand, small_factor);
    if (eat("@")) {
      if (s_.steps.empty()) fail("@ before any step");
      return s_.steps.back().result;
    }
    if (eat("#")) {
      const std::int64_t k = number();
      if (k < 1 || k > static_cast<std::int64_t>(s_.steps.size())) fail("no step #" + std::to_string(k) + " yet");
      return s_.steps[static_cast<std::size_t>(k - 1)].result;
    }
    if (i_ < text_.size() && is_lower(text_[i_])) {
      const int v = text_[i_++] - 'a';
      if (!s_.has[static_cast<std::size_t>(v)]) fail(std::string("variable ") + static_cast<char>('a' + v) + " is not set");
      return s_.var[static_cast<std::size_t>(v)];
    }
    return number();
  }
  std::int64_t number() {
    const std::size_t start = i_;
    std::int64_t v = 0;
    while (i_ < text_.size() && is_dec_digit(text_[i_]) && i_ - start < 9) v = v * 10 + (text_[i_++] - '0');
    if (i_ == start) fail(i_ < text_.size() ? "unexpected '" + std::string(1, text_[i_]) + "'" : "unexpected end");
    return v;
  }

  std::string_view text_;
  const scope& s_;
  const problem_template& t_;
  std::size_t i_ = 0;
};

inline std::int64_t eval(std::string_view text, const scope& s, const problem_template& t) {
  return expr_reader(text, s, t).read();
}

inline void draw_vars(const problem_template& t, scope& s, std::mt19937_64& rng) {
  for (std::string_view item : split(t.vars, ' ')) {
    if (item.empty()) continue;
    if (item[0] == '?') {
      if (eval(item.substr(1), s, t) == 0) throw rejected{};
      continue;
    }
    if (item.size() < 3 || !is_lower(item[0]) || item[1] != '=') throw template_error(t, "bad var item '" + std::string(item) + "'");
    const std::string_view rhs = item.substr(2);
    std::int64_t v;
    if (const std::size_t dots = rhs.find(".."); dots != std::string_view::npos) {
      const std::int64_t lo = eval(rhs.substr(0, dots), s, t), hi = eval(rhs.substr(dots + 2), s, t);
      if (lo > hi) throw rejected{};
      v = uniform_int(rng, lo, hi);
    } else if (rhs.find('|') != std::string_view::npos) {
      const auto options = split(rhs, '|');
      v = eval(options[pick_index(rng, options.size())], s, t);
    } else {
      v = eval(rhs, s, t);
    }
    const auto k = static_cast<std::size_t>(item[0] - 'a');
    s.var[k] = v;
    s.has[k] = true;
  }
}

// The step a op b, rejecting the draw unless operands and result are in [0, synth_value_limit)
// and a division is exact.
inline step make_step(char op, std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (a < 0 || b < 0 || a >= synth_value_limit || b >= synth_value_limit || !apply_op(op, a, b, r) || r < 0 ||
      r >= synth_value_limit)
    throw rejected{};
  return {op, a, b, r};
}

// "a op b=<<a op b=c>>c"
inline std::string annotation(const step& s) {
  const std::string lhs = std::to_string(s.a) + s.op + std::to_string(s.b);
  const std::string r = std::to_string(s.result);
  return lhs + "=<<" + lhs + "=" + r + ">>" + r;
}

// Resolves [[a|b]] choices, then {placeholders}. In the question, variables must lie in [0, M].
inline std::string expand(const problem_template& t, std::string_view text, const scope& s, const cast& c,
                          std::mt19937_64& rng, bool question) {
  std::string src(text);
  for (std::size_t at; (at = src.find("[[")) != std::string::npos;) {
    const std::size_t end = src.find("]]", at);
    if (end == std::string::npos) throw template_error(t, "unclosed [[");
    const auto options = split(std::string_view(src).substr(at + 2, end - at - 2), '|');
    const std::string chosen(options[pick_index(rng, options.size())]);
    src.replace(at, end + 2 - at, chosen);
  }
  std::string out;
  for (std::size_t i = 0; i < src.size();) {
    if (src[i] != '{') {
      out += src[i++];
      continue;
    }
    const std::size_t end = src.find('}', i);
    if (end == std::string::npos) throw template_error(t, "unclosed {");
    const std::string_view key = std::string_view(src).substr(i + 1, end - i - 1);
    i = end + 1;
    if (key.size() == 1 && is_lower(key[0])) {
      const auto k = static_cast<std::size_t>(key[0] - 'a');
      if (!s.has[k]) throw template_error(t, "variable " + std::string(key) + " is not set");
      const std::int64_t v = s.var[k];
      if (question && (v < 0 || v > s.max_operand)) throw rejected{};
      out += std::to_string(v);
    } else if (!key.empty() && (key[0] == '#' || key[0] == '@')) {
      if (question) throw template_error(t, "a question cannot show step results");
      out += std::to_string(eval(key, s, t));
    } else if (!key.empty() && (key[0] == 'P' || key[0] == 'Q' || key[0] == 'R') &&
               (key.size() == 1 || key[1] == ':')) {
      const person& p = *c.who[static_cast<std::size_t>(key[0] - 'P')];
      const std::string_view f = key.size() == 1 ? "" : key.substr(2);
      if (f.empty()) out += p.name;
      else if (f == "he") out += p.female ? "she" : "he";
      else if (f == "He") out += p.female ? "She" : "He";
      else if (f == "his" || f == "him") out += p.female ? std::string_view("her") : f;
      else if (f == "His") out += p.female ? "Her" : "His";
      else throw template_error(t, "unknown pronoun {" + std::string(key) + "}");
    } else if (key == "item") out += c.item->one;
    else if (key == "items") out += c.item->many;
    else if (key == "box") out += c.item->box;
    else if (key == "boxes") out += c.item->boxes;
    else if (key == "item2") out += c.item2->one;
    else if (key == "items2") out += c.item2->many;
    else if (key == "unit") out += c.unit->many;
    else if (key == "unit1") out += c.unit->one;
    else throw template_error(t, "unknown placeholder {" + std::string(key) + "}");
  }
  return out;
}

// Evaluates the one [x op y] of an answer line, records the step and writes its annotation.
inline std::string annotate_line(const problem_template& t, const std::string& line, scope& s) {
  const std::size_t open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      line.find('[', open + 1) != std::string::npos || line.find(']', close + 1) != std::string::npos)
    throw template_error(t, "answer line needs exactly one [x op y]: '" + line + "'");
  const std::string_view inner = std::string_view(line).substr(open + 1, close - open - 1);
  // x op y: the operator is the first of + - * / after the first character of x.
  std::size_t at = 1;
  while (at < inner.size() && std::strchr("+-*/", inner[at]) == nullptr) ++at;
  if (at + 1 >= inner.size()) throw template_error(t, "bad step [" + std::string(inner) + "]");
  const auto operand = [&](std::string_view x) {
    const bool simple = x == "@" || (x.size() == 1 && is_lower(x[0])) ||
                        (!x.empty() && std::all_of(x.begin() + (x[0] == '#'), x.end(), is_dec_digit) && x != "#");
    if (!simple) throw template_error(t, "bad operand '" + std::string(x) + "' in [" + std::string(inner) + "]");
    return eval(x, s, t);
  };
  const std::int64_t a = operand(inner.substr(0, at)), b = operand(inner.substr(at + 1));
  const step st = make_step(inner[at], a, b);
  s.steps.push_back(st);
  return line.substr(0, open) + annotation(st) + line.substr(close + 1);
}

inline std::string finish_answer(std::span<const std::string> lines, std::int64_t final_answer) {
  std::string answer;
  for (const std::string& l : lines) answer += l + "\n";
  return answer + "#### " + std::to_string(final_answer);
}

// One draw of a template; throws rejected when the numbers break a rule. `kept`, if given,
// receives the indices of the answer lines used (all but the if-then branches not taken).
inline problem instantiate(const problem_template& t, op_type type, int level, std::mt19937_64& rng,
                           std::int64_t max_operand, std::vector<std::size_t>* kept = nullptr) {
  scope s;
  s.max_operand = max_operand;
  draw_vars(t, s, rng);
  const cast c = draw_cast(rng);
  problem p{expand(t, t.question, s, c, rng, true), {}, type, level, {}, 0};
  std::vector<std::string> lines;
  const auto raw_lines = split(t.answer, '\n');
  for (std::size_t i = 0; i < raw_lines.size(); ++i) {
    std::string_view raw = raw_lines[i];
    if (!raw.empty() && raw[0] == '?') {
      const std::size_t space = raw.find(' ');
      if (space == std::string_view::npos) throw template_error(t, "condition without a line");
      if (eval(raw.substr(1, space - 1), s, t) == 0) continue;
      raw = raw.substr(space + 1);
    }
    lines.push_back(annotate_line(t, expand(t, raw, s, c, rng, false), s));
    if (kept) kept->push_back(i);
  }
  const level_range range = level_steps(level);
  const auto n = static_cast<int>(s.steps.size());
  if (n < range.min_steps || n > range.max_steps) throw rejected{};
  p.steps = std::move(s.steps);
  p.final_answer = p.steps.back().result;
  p.answer = finish_answer(lines, p.final_answer);
  return p;
}


// clang-format off
inline constexpr problem_template templates[] = {
  // ---------------------------------------------------------------- addition
  {op_type::addition, 1, form::word, "a=2..M b=2..M",
   "{P} has {a} {items}. {Q} gives {P:him} {b} more {items}. How many {items} does {P} have now?",
   "{P} has [a+b] {items} now."},
  {op_type::addition, 1, form::word, "a=2..M b=2..M",
   "{P} collected {a} {items} in the morning and {b} {items} in the afternoon. How many {items} did {P:he} collect [[in all|altogether]]?",
   "{P:He} collected [a+b] {items} in all."},
  {op_type::addition, 1, form::word, "a=2..M b=2..M",
   "There are {a} {items} in one {box} and {b} {items} in another {box}. How many {items} are there in the two {boxes}?",
   "There are [a+b] {items} in the two {boxes}."},
  {op_type::addition, 2, form::word, "a=2..M b=2..M c=2..M",
   "{P} has {a} {items}. {P:He} buys {b} more, and then {Q} gives {P:him} {c}. How many {items} does {P} have now?",
   "After buying, {P} has [a+b] {items}.\n"
   "After the gift, {P:he} has [#1+c] {items}."},
  {op_type::addition, 2, form::word, "a=2..M b=2..M",
   "{P} has {a} {items}. {Q} has {b} more {items} than {P}. How many {items} do they have together?",
   "{Q} has [a+b] {items}.\n"
   "Together they have [a+#1] {items}."},
  {op_type::addition, 2, form::word, "a=2..M b=2..M c=2..M",
   "A shop sold {a} {items} on Monday, {b} on Tuesday and {c} on Wednesday. How many {items} did it sell in the three days?",
   "On Monday and Tuesday it sold [a+b] {items}.\n"
   "In the three days it sold [#1+c] {items}."},
  {op_type::addition, 3, form::word, "a=2..M b=2..M c=2..M",
   "{P} has {a} {items}. {Q} has {b} more {items} than {P}, and {R} has {c} more than {Q}. How many {items} do the three of them have in all?",
   "{Q} has [a+b] {items}.\n"
   "{R} has [#1+c] {items}.\n"
   "{P} and {Q} have [a+#1] {items}.\n"
   "All three have [#3+#2] {items}."},
  {op_type::addition, 3, form::word, "a=2..M b=2..M c=2..M d=2..M",
   "{P} collects {items}. {P:He} gets {a} on Monday, {b} on Tuesday, {c} on Wednesday and {d} on Thursday. How many {items} does {P:he} collect in the four days?",
   "By Tuesday {P:he} has [a+b] {items}.\n"
   "By Wednesday {P:he} has [#1+c] {items}.\n"
   "By Thursday {P:he} has [#2+d] {items}."},
  {op_type::addition, 3, form::word, "a=2..M b=2..M c=2..M",
   "A school has {a} students in the first grade. The second grade has {b} more students than the first, and the third grade has {c} more than the second. How many students are in the second and third grades together?",
   "The second grade has [a+b] students.\n"
   "The third grade has [#1+c] students.\n"
   "Together they have [#1+#2] students."},
  {op_type::addition, 4, form::word, "a=2..M b=2..M c=2..M d=2..M e=2..M f=2..M",
   "A school has three classes. The first class has {a} boys and {b} girls, the second has {c} boys and {d} girls, and the third has {e} boys and {f} girls. How many students are in the three classes?",
   "The first class has [a+b] students.\n"
   "The second class has [c+d] students.\n"
   "The third class has [e+f] students.\n"
   "The first two classes have [#1+#2] students.\n"
   "All three classes have [#4+#3] students."},
  {op_type::addition, 4, form::word, "a=2..M b=2..M c=2..M d=2..M",
   "{P} has {a} red {items} and {b} blue {items}. {Q} has {c} more red {items} and {d} more blue {items} than {P}. How many {items} do they have together?",
   "{P} has [a+b] {items}.\n"
   "{Q} has [a+c] red {items}.\n"
   "{Q} has [b+d] blue {items}.\n"
   "{Q} has [#2+#3] {items}.\n"
   "Together they have [#1+#4] {items}."},
  {op_type::addition, 4, form::word, "a=2..M b=2..M c=2..M d=2..M e=2..M",
   "{P} has {a} {items} and buys {b} more. {Q} has {c} {items} and buys {d} more. {R} has as many {items} as {P} and {Q} together, plus {e}. How many {items} do the three have in all?",
   "{P} has [a+b] {items}.\n"
   "{Q} has [c+d] {items}.\n"
   "{P} and {Q} have [#1+#2] {items}.\n"
   "{R} has [#3+e] {items}.\n"
   "The three have [#3+#4] {items}."},
  {op_type::addition, 5, form::bare, "a=2..M b=2..M c=2..M",
   "Let x = {a} and y = x + {b}. Let z = x + y and w = y + z + {c}. What is w + x?",
   "y = [a+b].\n"
   "z = x + y = [a+#1].\n"
   "y + z = [#1+#2].\n"
   "w = [#3+c].\n"
   "w + x = [#4+a]."},
  {op_type::addition, 5, form::bare, "a=2..M b=2..M",
   "Let p = {a}, q = p + {b}, r = p + q, and s = q + r. What is p + r + s?",
   "q = [a+b].\n"
   "r = p + q = [a+#1].\n"
   "s = q + r = [#1+#2].\n"
   "r + s = [#2+#3].\n"
   "p + r + s = [a+#4]."},
  {op_type::addition, 5, form::word, "a=2..M d=2..M",
   "A sequence starts at {a}, and each term is {d} more than the one before. What is the sum of the first four terms?",
   "The second term is [a+d].\n"
   "The third term is [#1+d].\n"
   "The fourth term is [#2+d].\n"
   "The first two terms add up to [a+#1].\n"
   "The first three terms add up to [#4+#2].\n"
   "All four terms add up to [#5+#3]."},

  // ---------------------------------------------------------------- subtraction
  {op_type::subtraction, 1, form::word, "a=4..M b=2..a-2",
   "{P} had {a} {items}. {P:He} gave {b} of them to {Q}. How many {items} does {P} have left?",
   "{P} has [a-b] {items} left."},
  {op_type::subtraction, 1, form::word, "a=4..M b=2..a-2",
   "There were {a} {items} in a {box}. {P} took out {b} of them. How many {items} are still in the {box}?",
   "There are [a-b] {items} still in the {box}."},
  {op_type::subtraction, 1, form::word, "a=4..M b=2..a-2",
   "{P} has {a} {items} and {Q} has {b} {items}. How many more {items} does {P} have than {Q}?",
   "{P} has [a-b] more {items} than {Q}."},
  {op_type::subtraction, 2, form::word, "a=6..M b=2..(a-2)/2 c=2..(a-2)/2",
   "{P} had {a} {items}. {P:He} gave {b} to {Q} and {c} to {R}. How many {items} does {P} have left?",
   "After giving to {Q}, {P} has [a-b] {items}.\n"
   "After giving to {R}, {P:he} has [#1-c] {items}."},
  {op_type::subtraction, 2, form::word, "a=6..M b=2..(a-2)/2 c=2..(a-2)/2",
   "{P} has {a} {items}. {Q} has {b} fewer {items} than {P}, and {R} has {c} fewer than {Q}. How many {items} does {R} have?",
   "{Q} has [a-b] {items}.\n"
   "{R} has [#1-c] {items}."},
  {op_type::subtraction, 2, form::word, "a=6..M b=2..(a-2)/2 c=2..(a-2)/2",
   "A {box} holds {a} {items}. {P} takes out {b}, and later {Q} takes out {c}. How many {items} are left in the {box}?",
   "After {P}, [a-b] {items} are left.\n"
   "After {Q}, [#1-c] {items} are left."},
  {op_type::subtraction, 3, form::word, "a=10..M b=2..(a-2)/4 c=2..(a-2)/4 d=2..(a-2)/4 e=2..(a-2)/4",
   "{P} had {a} {items}. {P:He} gave {b} to {Q}, sold {c}, and lost {d}. Then {P:he} used {e} more. How many {items} does {P:he} have now?",
   "After giving some to {Q}, {P} has [a-b] {items}.\n"
   "After selling, {P:he} has [#1-c] {items}.\n"
   "After losing some, {P:he} has [#2-d] {items}.\n"
   "Now {P:he} has [#3-e] {items}."},
  {op_type::subtraction, 3, form::word, "a=6..M b=2..M c=2..M d=2..M ?a-b-c>=1",
   "A bus had {a} passengers. At the first stop, {b} passengers got off. At the second stop, {c} got off and {d} got on. How many passengers are on the bus now?",
   "After the first stop, there are [a-b] passengers.\n"
   "After {c} get off at the second stop, there are [#1-c].\n"
   "After {d} get on, there are [#2+d] passengers."},
  {op_type::subtraction, 3, form::word, "a=2..M b=2..M c=b+2..M ?a+b-c>=2",
   "{P} has {a} {items}, which is {b} fewer than {Q}. {R} has {c} fewer {items} than {Q}. How many more {items} does {P} have than {R}?",
   "{Q} has [a+b] {items}.\n"
   "{R} has [#1-c] {items}.\n"
   "{P} has [a-#2] more {items} than {R}."},
  {op_type::subtraction, 4, form::word, "b=6..M e=2..(b-2)/2 f=2..(b-2)/2 r=b-e-f a=r+6..M c=2..(a-r-2)/2 d=2..(a-r-2)/2",
   "{P} had {a} {items} and {Q} had {b} {items}. {P} gave away {c} and then lost {d}. {Q} gave away {e} and then lost {f}. How many more {items} does {P} have left than {Q}?",
   "{P} has [a-c] {items} after giving some away.\n"
   "{P} has [#1-d] {items} left.\n"
   "{Q} has [b-e] {items} after giving some away.\n"
   "{Q} has [#3-f] {items} left.\n"
   "{P} has [#2-#4] more {items} than {Q}."},
  {op_type::subtraction, 4, form::word, "a=5..M b=2..(a-1)/2 c=2..(a-1)/2 d=5..M e=2..(d-1)/2 f=2..(d-1)/2",
   "A store had {a} {items}. It sold {b} on Monday and {c} on Tuesday. A second store had {d} {items} and sold {e} on Monday and {f} on Tuesday. How many {items} do the two stores have left in total?",
   "The first store has [a-b] {items} after Monday.\n"
   "The first store has [#1-c] {items} left.\n"
   "The second store has [d-e] {items} after Monday.\n"
   "The second store has [#3-f] {items} left.\n"
   "Together they have [#2+#4] {items} left."},
  {op_type::subtraction, 5, form::bare, "a=6..M b=2..M c=2..M ?a-b-c>=1",
   "Let x = {a}, y = x - {b}, and z = y - {c}. What is (x - z) + (y - z)?",
   "y = [a-b].\n"
   "z = [#1-c].\n"
   "x - z = [a-#2].\n"
   "y - z = [#1-#2].\n"
   "(x - z) + (y - z) = [#3+#4]."},
  {op_type::subtraction, 5, form::word, "d=2..S a=5*d+2..M",
   "A sequence starts at {a}, and each term is {d} less than the one before. What is the sixth term?",
   "The second term is [a-d].\n"
   "The third term is [#1-d].\n"
   "The fourth term is [#2-d].\n"
   "The fifth term is [#3-d].\n"
   "The sixth term is [#4-d]."},
  {op_type::subtraction, 5, form::word, "a=2..M b=2..M c=2..M ?a-b>=1 ?a-2*b+c>=1 ?a-3*b+2*c>=1",
   "A water tank holds {a} liters. Each day {b} liters are used in the morning and {c} liters are added in the evening. How many liters are in the tank after three days?",
   "After the first morning, there are [a-b] liters.\n"
   "After the first evening, there are [#1+c] liters.\n"
   "After the second morning, there are [#2-b] liters.\n"
   "After the second evening, there are [#3+c] liters.\n"
   "After the third morning, there are [#4-b] liters.\n"
   "After the third evening, there are [#5+c] liters."},

  // ---------------------------------------------------------------- multiplication
  {op_type::multiplication, 1, form::word, "a=2..S b=2..M",
   "{P} buys {a} {boxes} of {items}. Each {box} has {b} {items}. How many {items} does {P:he} buy?",
   "{P:He} buys [a*b] {items}."},
  {op_type::multiplication, 1, form::word, "a=2..S b=2..M",
   "A {box} holds {b} {items}. How many {items} are in {a} {boxes}?",
   "There are [a*b] {items} in {a} {boxes}."},
  {op_type::multiplication, 1, form::word, "a=2..S b=2..M",
   "Each ticket to the fair costs ${b}. How much do {a} tickets cost?",
   "{a} tickets cost $[a*b]."},
  {op_type::multiplication, 2, form::word, "a=2..M b=2..S c=2..S",
   "{P} has {a} {items}. {P:He} buys {b} {boxes} with {c} {items} in each. How many {items} does {P:he} have now?",
   "{P:He} buys [b*c] {items}.\n"
   "Now {P:he} has [a+#1] {items}."},
  {op_type::multiplication, 2, form::word, "a=2..S b=2..M c=2..S",
   "A shelf has {a} rows with {b} {items} in each row. A store has {c} such shelves. How many {items} are on all the shelves?",
   "One shelf holds [a*b] {items}.\n"
   "All the shelves hold [#1*c] {items}."},
  {op_type::multiplication, 2, form::word, "a=2..M b=2..S c=2..S",
   "{P} earns ${a} per hour and works {b} hours a day. How much does {P:he} earn in {c} days?",
   "In one day {P:he} earns $[a*b].\n"
   "In {c} days {P:he} earns $[#1*c]."},
  {op_type::multiplication, 3, form::word, "a=2..S b=2..S c=2..S d=2..M",
   "A crate holds {a} {boxes}, and each {box} holds {b} {items}. A store receives {c} crates and already had {d} {items}. How many {items} does the store have now?",
   "One crate holds [a*b] {items}.\n"
   "The store receives [#1*c] {items}.\n"
   "Now the store has [#2+d] {items}."},
  {op_type::multiplication, 3, form::word, "a=2..S b=2..M c=2..S d=2..M",
   "{P} buys {a} notebooks at ${b} each and {c} pens at ${d} each. How much does {P:he} spend in all?",
   "The notebooks cost $[a*b].\n"
   "The pens cost $[c*d].\n"
   "{P:He} spends $[#1+#2] in all."},
  {op_type::multiplication, 3, form::word, "a=2..S b=2..S c=2..S d=2..S",
   "A garden has {a} rows of {b} plants, and each plant has {c} flowers. {P} has {d} such gardens. How many flowers are there in all?",
   "One garden has [a*b] plants.\n"
   "One garden has [#1*c] flowers.\n"
   "All the gardens have [#2*d] flowers."},
  {op_type::multiplication, 3, form::word, "a=2..S b=2..M c=2..S d=2..M e=2..M",
   "{P} buys {a} shirts at ${b} each, {c} hats at ${d} each, and a bag for ${e}. How much does {P:he} spend?",
   "The shirts cost $[a*b].\n"
   "The hats cost $[c*d].\n"
   "The shirts and hats cost $[#1+#2].\n"
   "With the bag, {P:he} spends $[#3+e]."},
  {op_type::multiplication, 4, form::word, "a=2..S b=2..S c=2..S d=2..S e=2..S f=2..S",
   "A theater has {a} rows of {b} seats on the ground floor and {c} rows of {d} seats in the balcony. A ticket costs ${e}. How much money does the theater take in if every seat is sold at each of {f} shows?",
   "The ground floor has [a*b] seats.\n"
   "The balcony has [c*d] seats.\n"
   "The theater has [#1+#2] seats.\n"
   "One full show takes in $[#3*e].\n"
   "{f} shows take in $[#4*f]."},
  {op_type::multiplication, 4, form::word, "a=2..S b=2..S c=2..S d=2..S e=2..S",
   "{P} buys {a} packs of {items} with {b} in each pack. {Q} buys {c} packs with {d} in each pack. {R} buys {e} times as many {items} as {P} and {Q} together. How many {items} do the three of them buy?",
   "{P} buys [a*b] {items}.\n"
   "{Q} buys [c*d] {items}.\n"
   "{P} and {Q} buy [#1+#2] {items}.\n"
   "{R} buys [#3*e] {items}.\n"
   "The three buy [#3+#4] {items}."},
  {op_type::multiplication, 4, form::word, "a=2..S b=2..S c=2..S d=2..S e=2..S f=2..S",
   "A factory has {a} machines that each make {b} {items} an hour and {c} machines that each make {d} {items} an hour. The machines run {e} hours a day. How many {items} does the factory make in {f} days?",
   "The first machines make [a*b] {items} an hour.\n"
   "The other machines make [c*d] {items} an hour.\n"
   "Together they make [#1+#2] {items} an hour.\n"
   "In a day they make [#3*e] {items}.\n"
   "In {f} days they make [#4*f] {items}."},
  {op_type::multiplication, 5, form::bare, "a=2..S b=2..S c=2..S",
   "Let x = {a}, y = {b}, and z = {c}. Let p = x * y, q = p * z, and r = y * z. What is q + r * x?",
   "p = [a*b].\n"
   "q = p * z = [#1*c].\n"
   "r = [b*c].\n"
   "r * x = [#3*a].\n"
   "q + r * x = [#2+#4]."},
  {op_type::multiplication, 5, form::bare, "a=2..S b=2..M",
   "Let n = {a} and m = {b}. What is n^4 + n^3 + m * n^2?",
   "n^2 = [a*a].\n"
   "n^3 = [#1*a].\n"
   "n^4 = [#2*a].\n"
   "m * n^2 = [b*#1].\n"
   "n^4 + n^3 = [#3+#2].\n"
   "n^4 + n^3 + m * n^2 = [#5+#4]."},
  {op_type::multiplication, 5, form::bare, "a=2..S b=2..S c=2..S",
   "Let x = {a}, y = x * {b}, and z = y * {c}. What is x * y + y * z?",
   "y = [a*b].\n"
   "z = [#1*c].\n"
   "x * y = [a*#1].\n"
   "y * z = [#1*#2].\n"
   "x * y + y * z = [#3+#4]."},
  {op_type::multiplication, 5, form::word, "a=2..M b=2..4 h=5..7",
   "A colony starts with {a} cells. Every hour, each cell splits into {b} cells. How many cells are there after {h} hours?",
   "After one hour, there are [a*b] cells.\n"
   "After two hours, there are [#1*b] cells.\n"
   "After three hours, there are [#2*b] cells.\n"
   "After four hours, there are [#3*b] cells.\n"
   "After five hours, there are [#4*b] cells.\n"
   "?h>=6 After six hours, there are [#5*b] cells.\n"
   "?h>=7 After seven hours, there are [#6*b] cells."},

  // ---------------------------------------------------------------- division
  {op_type::division, 1, form::word, "b=2..S k=2..M/b a=b*k",
   "{P} has {a} {items} and shares them equally among {b} friends. How many {items} does each friend get?",
   "Each friend gets [a/b] {items}."},
  {op_type::division, 1, form::word, "b=2..S k=2..M/b a=b*k",
   "There are {a} {items} to pack into {boxes} of {b}. How many {boxes} are needed?",
   "They need [a/b] {boxes}."},
  {op_type::division, 1, form::word, "b=2..S k=2..M/b a=b*k",
   "A rope {a} meters long is cut into {b} equal pieces. How many meters long is each piece?",
   "Each piece is [a/b] meters long."},
  {op_type::division, 2, form::word, "b=2..S k=2..M/b t=b*k a=2..t-2 c=t-a",
   "{P} has {a} {items} and buys {c} more. {P:He} shares all of them equally among {b} friends. How many {items} does each friend get?",
   "{P} has [a+c] {items}.\n"
   "Each friend gets [#1/b] {items}."},
  {op_type::division, 2, form::word, "b=2..S k=4..M/b a=b*k c=2..k-2",
   "A teacher shares {a} {items} equally among {b} children. Each child then gives {c} {items} to {P}. How many {items} does each child have left?",
   "Each child gets [a/b] {items}.\n"
   "Each child has [#1-c] {items} left."},
  {op_type::division, 2, form::word, "b=2..S k=2..M/b a=b*k c=2..M",
   "A baker makes {a} muffins and packs them in boxes of {b}. Each box sells for ${c}. How much money does the baker get for all the boxes?",
   "The baker fills [a/b] boxes.\n"
   "The boxes sell for $[#1*c]."},
  {op_type::division, 3, form::word, "b=2..S c=2..S k=2..M/b/c a=b*c*k d=2..M",
   "A school has {a} pencils to share equally among {b} classes. Each class shares its pencils equally among {c} tables. Each table already had {d} pencils. How many pencils does each table have now?",
   "Each class gets [a/b] pencils.\n"
   "Each table gets [#1/c] pencils.\n"
   "Each table now has [#2+d] pencils."},
  {op_type::division, 3, form::word, "c=2..S k=3..M/c r=c*k b=2..M-r a=r+b d=2..k-1",
   "{P} had ${a}. {P:He} spent ${b} on a book and shared the rest equally among {P:his} {c} children. Each child then spent ${d}. How much money does each child have left?",
   "After the book, {P} had $[a-b].\n"
   "Each child got $[#1/c].\n"
   "Each child has $[#2-d] left."},
  {op_type::division, 3, form::word, "b=2..S c=2..S k=2..M/b/c a=b*c*k d=2..M",
   "A farmer picks {a} apples, packs them into bags of {b}, and packs the bags into boxes of {c} bags each. Each box sells for ${d}. How much does the farmer earn?",
   "The farmer fills [a/b] bags.\n"
   "The bags fill [#1/c] boxes.\n"
   "The boxes sell for $[#2*d]."},
  {op_type::division, 3, form::word, "b=2..S k=2..M/b t=b*k a=2..t-2 c=t-a h=1..S/2 d=2*h",
   "{P} picks {a} {items} and {Q} picks {c} {items}. They pack them into {boxes} of {b} and sell each {box} for ${d}. They share the money equally. How much money does each of them get?",
   "They pick [a+c] {items}.\n"
   "They fill [#1/b] {boxes}.\n"
   "They get $[#2*d].\n"
   "Each of them gets $[#3/2]."},
  {op_type::division, 4, form::word, "c=2..S p=2..M/c a=c*p d=2..S q=2..M/d b=d*q f=2..6 g=1..3 e=f*g",
   "A school has {a} students in grade five and {b} in grade six. Grade five is split into teams of {c}, and grade six into teams of {d}. Each team gets {e} balls, and balls come in packs of {f}. How many packs of balls are needed?",
   "Grade five has [a/c] teams.\n"
   "Grade six has [b/d] teams.\n"
   "There are [#1+#2] teams.\n"
   "The teams need [#3*e] balls.\n"
   "They need [#4/f] packs."},
  {op_type::division, 4, form::word, "b=2..S x=2..M/b a=b*x d=2..S y=2..M/d c=d*y h=1..S/2 e=2*h",
   "{P} earns ${a} in {b} days, the same amount each day. {Q} earns ${c} in {d} days, also the same amount each day. They both work for {e} days and share all the money equally. How much money does each of them get?",
   "{P} earns $[a/b] a day.\n"
   "{Q} earns $[c/d] a day.\n"
   "Together they earn $[#1+#2] a day.\n"
   "In {e} days they earn $[#3*e].\n"
   "Each of them gets $[#4/2]."},
  {op_type::division, 4, form::word, "c=2..S d=2..S f=2..4 k=f+2..M/c/d t=c*d*k a=2..t-2 b=t-a e=2..M",
   "A bakery makes {a} cookies in the morning and {b} in the afternoon. It packs them into boxes of {c} and stacks the boxes into crates of {d} boxes. It keeps {f} crates and sells the rest for ${e} a crate. How much money does the bakery get?",
   "The bakery makes [a+b] cookies.\n"
   "They fill [#1/c] boxes.\n"
   "The boxes fill [#2/d] crates.\n"
   "It sells [#3-f] crates.\n"
   "The bakery gets $[#4*e]."},
  {op_type::division, 5, form::bare, "b=2..S c=2..S k=2..M/b/c a=b*c*k",
   "Let x = {a}, y = x / {b}, and z = y / {c}. What is (x + y) / z + z?",
   "y = [a/b].\n"
   "z = [#1/c].\n"
   "x + y = [a+#1].\n"
   "(x + y) / z = [#3/#2].\n"
   "(x + y) / z + z = [#4+#2]."},
  {op_type::division, 5, form::bare, "c=2..S d=2..S k=2..M/c q=c*k",
   "A number x satisfies x / {d} = {q}. Let y = x / {c} and z = y / {d}. What is x + y + z?",
   "x = [q*d].\n"
   "y = [#1/c].\n"
   "z = [#2/d].\n"
   "x + y = [#1+#2].\n"
   "x + y + z = [#4+#3]."},
  {op_type::division, 5, form::word, "k=2..M/32 a=k*32",
   "{P} has {a} {items}. Each day {P:he} gives away half of the {items} {P:he} still has. How many {items} does {P:he} have after five days?",
   "After the first day, {P:he} has [a/2] {items}.\n"
   "After the second day, {P:he} has [#1/2] {items}.\n"
   "After the third day, {P:he} has [#2/2] {items}.\n"
   "After the fourth day, {P:he} has [#3/2] {items}.\n"
   "After the fifth day, {P:he} has [#4/2] {items}."},

  // ---------------------------------------------------------------- mixed (level 1 also draws the four types' level-1 word templates)
  {op_type::mixed, 2, form::word, "a=2..S b=2..M c=2..M ?a*b-c>=2",
   "{P} buys {a} {boxes} of {items} with {b} {items} in each and gives {c} of them to {Q}. How many {items} does {P} have left?",
   "{P} buys [a*b] {items}.\n"
   "{P} has [#1-c] {items} left."},
  {op_type::mixed, 2, form::word, "b=2..S c=2..M a=2..M ?a-b*c>=1",
   "{P} has ${a}. {P:He} buys {b} pens at ${c} each. How much money does {P:he} have left?",
   "The pens cost $[b*c].\n"
   "{P} has $[a-#1] left."},
  {op_type::mixed, 2, form::word, "b=2..S k=2..M/b a=b*k c=2..M",
   "A teacher shares {a} {items} equally among {b} children. Then each child finds {c} more {items}. How many {items} does each child have now?",
   "Each child gets [a/b] {items}.\n"
   "Each child has [#1+c] {items} now."},
  {op_type::mixed, 3, form::word, "a=2..5 b=2..S c=2..5 d=2..S e=a*b+c*d+1..M",
   "{P} buys {a} shirts at ${b} each and {c} hats at ${d} each. {P:He} pays with ${e}. How much change does {P:he} get?",
   "The shirts cost $[a*b].\n"
   "The hats cost $[c*d].\n"
   "In total {P:he} spends $[#1+#2].\n"
   "{P:His} change is $[e-#3]."},
  {op_type::mixed, 3, form::word, "b=4..S k=2..M/b a=b*k c=2..b-2",
   "{P} has {a} {items}. {P:He} puts them equally into {b} {boxes} and gives {c} of the {boxes} to {Q}. How many {items} does {P} have left?",
   "Each {box} has [a/b] {items}.\n"
   "{P} keeps [b-c] {boxes}.\n"
   "{P} has [#1*#2] {items} left."},
  {op_type::mixed, 3, form::word, "d=2..S b=2..S c=2..M j=0..M/d a=(d-(b*c)%d)%d+d*j ?a>=2",
   "{P} has {a} {items} and buys {b} packs of {c} {items}. {P:He} then shares all the {items} equally among {d} friends. How many {items} does each friend get?",
   "{P:He} buys [b*c] {items}.\n"
   "{P:He} has [a+#1] {items}.\n"
   "Each friend gets [#2/d] {items}."},
  {op_type::mixed, 4, form::word, "a=2..M b=2..S c=2..M d=2..S f=2..S t=a*b+c*d j=0..M/f e=t%f+f*j ?e>=2 ?t-e>=f",
   "A class sells {a} cookies at ${b} each and {c} cupcakes at ${d} each. They spend ${e} on supplies and share the rest equally among {f} charities. How much does each charity get?",
   "The cookies bring in $[a*b].\n"
   "The cupcakes bring in $[c*d].\n"
   "The sales bring in $[#1+#2].\n"
   "After supplies, $[#3-e] is left.\n"
   "Each charity gets $[#4/f]."},
  {op_type::mixed, 4, form::word, "a=2..M b=2..5 d=2..S t=a+2*a*b j=0..3 c=t%d+d*j ?c>=2 ?c<a*b",
   "{P} has {a} {items}. {Q} has {b} times as many {items} as {P}, and {R} has {c} fewer {items} than {Q}. They put all their {items} together and share them equally among {d} {boxes}. How many {items} go in each {box}?",
   "{Q} has [a*b] {items}.\n"
   "{R} has [#1-c] {items}.\n"
   "{P} and {Q} have [a+#1] {items}.\n"
   "All together they have [#3+#2] {items}.\n"
   "Each {box} gets [#4/d] {items}."},
  {op_type::mixed, 4, form::word, "a=2..S b=2..S c=2..S e=2..S t=a*b*c j=0..M/e d=t%e+e*j ?d>=2 ?t-d>=e f=2..M g=2..M ?(t-d)/e*f-g>=1",
   "A farmer has {a} rows of {b} tomato plants, and each plant gives {c} tomatoes. The farmer keeps {d} tomatoes and packs the rest into boxes of {e}. Each box sells for ${f}, and the farmer pays ${g} for the boxes. How much money does the farmer make?",
   "There are [a*b] plants.\n"
   "They give [#1*c] tomatoes.\n"
   "The farmer packs [#2-d] tomatoes.\n"
   "That fills [#3/e] boxes.\n"
   "The boxes sell for $[#4*f].\n"
   "The farmer makes $[#5-g]."},
  {op_type::mixed, 5, form::bare, "b=2..M a=b+1..M",
   "Let x = {a} and y = {b}. Let p = x + y and q = x - y. What is p * q + y * y?",
   "p = [a+b].\n"
   "q = [a-b].\n"
   "p * q = [#1*#2].\n"
   "y * y = [b*b].\n"
   "p * q + y * y = [#3+#4]."},
  {op_type::mixed, 5, form::bare, "c=2..S m=2..5 x=2..M j=0..M/c b=((m+1)*x)%c+c*j ?b>=1 y=m*x-b z=(y+x)/c ?y>=x ?y>z",
   "Let x = {x}. Let y = {m}x - {b} and z = (y + x) / {c}. What is y - z?",
   "{m}x = [m*x].\n"
   "y = [#1-b].\n"
   "y + x = [#2+x].\n"
   "z = [#3/c].\n"
   "y - z = [#2-#4]."},
  {op_type::mixed, 5, form::word, "n=2..M a=2..S c=2..S j=0..M/c b=(c-(n*a)%c)%c+c*j ?b>=1 d=1..(n*a+b)/c-1 e=2..S",
   "{P} thinks of the number {n}. {P:He} multiplies it by {a}, adds {b}, divides the result by {c}, subtracts {d}, and finally multiplies by {e}. What number does {P:he} end with?",
   "{n} times {a} is [n*a].\n"
   "Adding {b} gives [#1+b].\n"
   "Dividing by {c} gives [#2/c].\n"
   "Subtracting {d} gives [#3-d].\n"
   "Multiplying by {e} gives [#4*e]."},

  // ---------------------------------------------------------------- equation (solutions and every step non-negative)
  {op_type::linear_equation, 1, form::bare, "x=1..M a=2..M b=x+a",
   "Solve for x: x + {a} = {b}.",
   "x = [b-a]."},
  {op_type::linear_equation, 1, form::bare, "a=2..S x=2..M/a b=a*x",
   "Solve for x: {a}x = {b}.",
   "x = [b/a]."},
  {op_type::linear_equation, 1, form::bare, "a=2..M x=a+1..M b=x-a",
   "Solve for x: x - {a} = {b}.",
   "x = [b+a]."},
  {op_type::linear_equation, 1, form::word, "x=2..M a=2..M b=x+a",
   "{P} thinks of a number. When {P:he} adds {a} to it, {P:he} gets {b}. What is the number?",
   "The number is [b-a]."},
  {op_type::linear_equation, 1, form::word, "a=2..S x=2..M/a b=a*x",
   "{P} bought {a} identical {items} for ${b}. How much did each {item} cost?",
   "Each {item} cost $[b/a]."},
  {op_type::linear_equation, 2, form::bare, "a=2..S x=1..M/a b=1..M c=a*x+b",
   "Solve for x: {a}x + {b} = {c}.",
   "{a}x = [c-b].\n"
   "x = [#1/a]."},
  {op_type::linear_equation, 2, form::bare, "a=2..S q=2..M/a b=1..q-1 c=q-b",
   "Solve for x: x / {a} - {b} = {c}.",
   "x / {a} = [c+b].\n"
   "x = [#1*a]."},
  {op_type::linear_equation, 2, form::word, "a=2..S x=2..M/(a+1) c=x*(a+1)",
   "{P} has some {items}. {Q} has {a} times as many {items} as {P}. Together they have {c} {items}. How many {items} does {P} have?",
   "Together they have [a+1] times as many {items} as {P}.\n"
   "{P} has [c/#1] {items}."},
  {op_type::linear_equation, 2, form::word, "a=2..S x=2..M/a b=2..M c=a*x+b",
   "{P} buys {a} pens and a notebook that costs ${b}. {P:He} spends ${c} in all. How much does each pen cost?",
   "The pens cost $[c-b].\n"
   "Each pen costs $[#1/a]."},
  {op_type::linear_equation, 3, form::bare, "c=2..S a=c+1..S+c x=1..M b=1..M d=(a-c)*x+b",
   "Solve for x: {a}x + {b} = {c}x + {d}.",
   "Subtracting {c}x from both sides leaves [a-c] as the coefficient of x.\n"
   "Subtracting {b} from both sides leaves [d-b] on the right.\n"
   "x = [#2/#1]."},
  {op_type::linear_equation, 3, form::bare, "c=2..S a=c+1..S+c x=1..M b=1..M d=(a-c)*x-b ?d>=1",
   "Solve for x: {a}x - {b} = {c}x + {d}.",
   "Subtracting {c}x from both sides leaves [a-c] as the coefficient of x.\n"
   "Adding {b} to both sides leaves [d+b] on the right.\n"
   "x = [#2/#1]."},
  {op_type::linear_equation, 3, form::bare, "c=2..S a=c+1..S+c b=1..(M-1)/a x=1..(M-a*b)/(a-c) d=(a-c)*x+a*b",
   "Solve for x: {a}(x + {b}) = {c}x + {d}.",
   "Expanding the left side gives {a}x + [a*b].\n"
   "Subtracting {c}x from both sides leaves [a-c] as the coefficient of x.\n"
   "Subtracting the constant from both sides leaves [d-#1] on the right.\n"
   "x = [#3/#2]."},
  {op_type::linear_equation, 3, form::word, "x=1..M/4 a=1..M/4 b=1..M/8 c=2*x+a+2*b",
   "{P} is {a} years older than {Q}. In {b} years, their ages will add up to {c}. How old is {Q} now?",
   "In {b} years each of them is {b} years older, which adds [b*2] years in total.\n"
   "Now their ages add up to [c-#1].\n"
   "Without the difference of {a} years, twice {Q}'s age is [#2-a].\n"
   "{Q} is [#3/2] years old."},
  {op_type::linear_equation, 4, form::bare, "a=2..S x=1..M/a b=1..M c=a*x+b d=2..S y=1..M e=d*y-x ?e>=1",
   "First solve {a}x + {b} = {c}. Then solve {d}y - x = {e}. What is x + y?",
   "{a}x = [c-b].\n"
   "x = [#1/a].\n"
   "{d}y = [e+#2].\n"
   "y = [#3/d].\n"
   "x + y = [#2+#4]."},
  {op_type::linear_equation, 4, form::word, "a=2..S b=2..S d=1..S n=d+1..(M+b*d)/(a+b) c=a*n+b*(n-d) e=2..S",
   "{P} buys {a} notebooks and {b} pens for ${c}. Each pen costs ${d} less than each notebook. How much do {e} notebooks cost?",
   "Pricing each pen like a notebook adds $[b*d].\n"
   "The total would then be $[c+#1].\n"
   "That total buys [a+b] notebooks.\n"
   "Each notebook costs $[#2/#3].\n"
   "{e} notebooks cost $[#4*e]."},
  {op_type::linear_equation, 5, form::bare, "y=1..M/2 x=y+1..M-y s=x+y d=x-y",
   "x + y = {s} and x - y = {d}. What is x * x - y * y?",
   "Adding the two equations gives 2x = [s+d].\n"
   "x = [#1/2].\n"
   "y = [s-#2].\n"
   "x * x = [#2*#2].\n"
   "y * y = [#3*#3].\n"
   "x * x - y * y = [#4-#5]."},
  {op_type::linear_equation, 5, form::bare, "a=2..S c=2..S x=1..M/(a+c) b=1..M d=(a+c)*x+b",
   "y = {a}x + {b} and {c}x + y = {d}. What is x + y?",
   "Substituting y gives {c}x + {a}x + {b} = {d}, so the coefficient of x is [a+c].\n"
   "Subtracting {b} leaves [d-b] on the right.\n"
   "x = [#2/#1].\n"
   "{a}x = [a*#3].\n"
   "y = [#4+b].\n"
   "x + y = [#3+#5]."},
  {op_type::linear_equation, 5, form::word, "c=2..S a=c+1..M n=4..M/a k=2..n-2 t=a*k+c*(n-k)",
   "Adult tickets cost ${a} and child tickets cost ${c}. A school sold {n} tickets for ${t}. How much money came from child tickets?",
   "If all {n} tickets were child tickets, they would bring in $[c*n].\n"
   "The extra money from adult tickets is $[t-#1].\n"
   "Each adult ticket brings $[a-c] extra.\n"
   "So [#2/#3] adult tickets were sold.\n"
   "That leaves [n-#4] child tickets.\n"
   "Child tickets brought in $[#5*c]."},

  // ---------------------------------------------------------------- percent and ratio ("p% of b" is always b*p, then /100)
  {op_type::percent_ratio, 1, form::bare, "k=2..S j=2..M/k b=k*j",
   "What is 1/{k} of {b}?",
   "1/{k} of {b} is [b/k]."},
  {op_type::percent_ratio, 1, form::bare, "a=2..S b=2..M",
   "x : {b} = {a} : 1. What is x?",
   "x = [b*a]."},
  {op_type::percent_ratio, 1, form::word, "k=2..M d=2..S",
   "On a map, 1 centimeter stands for {k} kilometers. Two towns are {d} centimeters apart on the map. How many kilometers apart are they?",
   "They are [d*k] kilometers apart."},
  {op_type::percent_ratio, 1, form::word, "a=2..S b=2..M",
   "For every blue marble in a jar, there are {a} red marbles. There are {b} blue marbles. How many red marbles are there?",
   "There are [b*a] red marbles."},
  {op_type::percent_ratio, 1, form::word, "k=2..S j=2..M/k b=k*j",
   "{P} spends 1/{k} of {P:his} ${b} allowance on books. How much does {P:he} spend on books?",
   "{P:He} spends $[b/k] on books."},
  {op_type::percent_ratio, 2, form::bare, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j",
   "What is {p}% of {b}?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100 gives [#1/100]."},
  {op_type::percent_ratio, 2, form::word, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j ?b*p/100>=2",
   "A shop had {b} {items} and sold {p}% of them. How many {items} did it sell?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100, the shop sold [#1/100] {items}."},
  {op_type::percent_ratio, 2, form::word, "c=2..S a=1..S ?a!=c k=2..M/c d=c*k",
   "The ratio of cats to dogs at a shelter is {a} to {c}. There are {d} dogs. How many cats are there?",
   "Each part of the ratio is [d/c] animals.\n"
   "There are [#1*a] cats."},
  {op_type::percent_ratio, 3, form::bare, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j",
   "What is {b} increased by {p}%?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100 gives [#1/100].\n"
   "{b} increased by {p}% is [b+#2]."},
  {op_type::percent_ratio, 3, form::bare, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j",
   "What is {b} decreased by {p}%?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100 gives [#1/100].\n"
   "{b} decreased by {p}% is [b-#2]."},
  {op_type::percent_ratio, 3, form::word, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j",
   "A class has {b} students, and {p}% of them are girls. How many boys are in the class?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100, there are [#1/100] girls.\n"
   "There are [b-#2] boys."},
  {op_type::percent_ratio, 3, form::word, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j w=2..S",
   "{P} earns ${b} a week and saves {p}% of it. How much does {P:he} save in {w} weeks?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100, {P:he} saves $[#1/100] a week.\n"
   "In {w} weeks {P:he} saves $[#2*w]."},
  {op_type::percent_ratio, 3, form::word, "a=1..S c=1..S ?a!=c t=a+c k=2..M/t n=t*k",
   "The ratio of boys to girls in a club is {a} to {c}. There are {n} children in the club. How many girls are there?",
   "The ratio has [a+c] parts.\n"
   "Each part is [n/#1] children.\n"
   "There are [#2*c] girls."},
  {op_type::percent_ratio, 4, form::word, "a=2..S b=1..S c=1..a-1 t=a+b+c k=2..M/t n=t*k",
   "Red, blue and green marbles in a bag are in the ratio {a} : {b} : {c}. There are {n} marbles. How many more red marbles than green marbles are there?",
   "Red and blue make [a+b] parts.\n"
   "All three colors make [#1+c] parts.\n"
   "Each part is [n/#2] marbles.\n"
   "There are [#3*a] red marbles.\n"
   "There are [#3*c] green marbles.\n"
   "There are [#4-#5] more red marbles than green marbles."},
  {op_type::percent_ratio, 4, form::word, "i=1..min(19,M/5) p=5*i l=1..min(19,M/5) q=5*l u=100/gcd(p,100) r=(100-p)/gcd(p,100) v=100/gcd(r*q,100) k=1..M/(u*v) b=u*v*k ?b-b*p/100-(b-b*p/100)*q/100>=2",
   "A store has {b} {items}. It sells {p}% of them in the morning and {q}% of the remaining {items} in the afternoon. How many {items} are left at the end of the day?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100, it sells [#1/100] {items} in the morning.\n"
   "[b-#2] {items} remain.\n"
   "{q} times that is [#3*q].\n"
   "Dividing by 100, it sells [#4/100] {items} in the afternoon.\n"
   "At the end of the day, [#3-#5] {items} are left."},
  {op_type::percent_ratio, 4, form::bare, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u b=u*j l=1..min(19,M/5) q=5*l v=100/gcd(q,100) k=1..M/v c=v*k",
   "What is {p}% of {b} plus {q}% of {c}?",
   "{b} times {p} is [b*p].\n"
   "Dividing by 100 gives [#1/100].\n"
   "{c} times {q} is [c*q].\n"
   "Dividing by 100 gives [#3/100].\n"
   "The sum is [#2+#4]."},
  {op_type::percent_ratio, 5, form::bare, "a=2..S c=1..a-1 t=a+c k=2..M/t s=t*k",
   "x : y = {a} : {c} and x + y = {s}. What is x - y?",
   "The ratio has [a+c] parts.\n"
   "Each part is [s/#1].\n"
   "x = [#2*a].\n"
   "y = [#2*c].\n"
   "x - y = [#3-#4]."},
  {op_type::percent_ratio, 5, form::word, "i=1..min(10,M/5) p=5*i l=1..min(10,M/5) q=5*l u=100/gcd(p,100) v=100/gcd(q,100) w=u*v/gcd(u,v) k=1..M/w n=w*k r=n+n*p/100",
   "After a {p}% increase, the price of a bike is ${r}. What would the price be if the original price had been cut by {q}% instead?",
   "After the increase, the price is [100+p]% of the original.\n"
   "{r} times 100 is [r*100].\n"
   "The original price is $[#2/#1].\n"
   "The original price times {q} is [#3*q].\n"
   "Dividing by 100, the cut is $[#4/100].\n"
   "The price after the cut would be $[#3-#5]."},

  // ---------------------------------------------------------------- average
  {op_type::average, 1, form::word, "n=2..S m=2..M t=n*m",
   "{P} scored a total of {t} points in {n} games. What is {P:his} average score per game?",
   "{P:His} average is [t/n] points per game."},
  {op_type::average, 1, form::word, "n=2..S m=2..M t=n*m",
   "{P} read {t} pages in {n} days. How many pages did {P:he} read per day on average?",
   "{P:He} read [t/n] pages per day on average."},
  {op_type::average, 1, form::bare, "n=2..S m=2..M t=n*m",
   "{n} numbers add up to {t}. What is their average?",
   "The average is [t/n]."},
  {op_type::average, 2, form::bare, "a=1..M j=1..M/2 b=2*j-a%2 ?b>=1",
   "What is the average of {a} and {b}?",
   "The sum is [a+b].\n"
   "The average is [#1/2]."},
  {op_type::average, 2, form::word, "a=2..M j=1..M/2 b=2*j-a%2 ?b>=2",
   "{P} read {a} pages on Saturday and {b} pages on Sunday. How many pages did {P:he} read per day on average?",
   "{P:He} read [a+b] pages in two days.\n"
   "That is [#1/2] pages per day on average."},
  {op_type::average, 2, form::word, "n=2..S m=2..M b=1..M ?n*m-b>=1",
   "{P} averaged {m} points per game over {n} games. {P:He} scored {b} points in the first game. How many points did {P:he} score in the other games?",
   "{P:He} scored [n*m] points in all.\n"
   "In the other games {P:he} scored [#1-b] points."},
  {op_type::average, 3, form::bare, "m=2..M a=1..M b=1..M c=3*m-a-b ?c>=1",
   "What is the average of {a}, {b} and {c}?",
   "The first two add up to [a+b].\n"
   "All three add up to [#1+c].\n"
   "The average is [#2/3]."},
  {op_type::average, 3, form::word, "m=2..M a=1..M b=1..M c=1..M d=4*m-a-b-c ?d>=1",
   "{P}'s test scores are {a}, {b}, {c} and {d}. What is {P:his} average score?",
   "The first two scores add up to [a+b].\n"
   "The first three add up to [#1+c].\n"
   "All four add up to [#2+d].\n"
   "The average is [#3/4]."},
  {op_type::average, 3, form::word, "n=2..S m=2..M u=2..M e=(n+1)*u-n*m ?e>=1 ?e<=M",
   "{P}'s average score on {n} tests is {m}. After one more test, {P:his} average is {u}. What did {P:he} score on the last test?",
   "The first {n} tests add up to [n*m] points.\n"
   "There are now [n+1] tests.\n"
   "They add up to [#2*u] points.\n"
   "The last test was [#3-#1] points."},
  {op_type::average, 4, form::word, "a=2..S b=2..S t=1..3 z=a*t+1..M-b*t x=z+b*t y=z-a*t",
   "A class of {a} students has an average score of {x}, and another class of {b} students has an average score of {y}. What is the average score of all the students together?",
   "The first class scores [a*x] points in total.\n"
   "The second class scores [b*y] points in total.\n"
   "All the students score [#1+#2] points.\n"
   "There are [a+b] students.\n"
   "The average is [#3/#4]."},
  {op_type::average, 4, form::word, "m=2..M a=1..M b=1..M c=1..M d=1..M e=5*m-a-b-c-d ?e>=1",
   "The average of five numbers is {m}. Four of them are {a}, {b}, {c} and {d}. What is the fifth number?",
   "The five numbers add up to [m*5].\n"
   "The first two known numbers add up to [a+b].\n"
   "The first three add up to [#2+c].\n"
   "The four known numbers add up to [#3+d].\n"
   "The fifth number is [#1-#4]."},
  {op_type::average, 4, form::bare, "m=2..M a=1..M b=1..M c=1..M d=1..M e=5*m-a-b-c-d ?e>=1",
   "What is the average of {a}, {b}, {c}, {d} and {e}?",
   "The first two add up to [a+b].\n"
   "The first three add up to [#1+c].\n"
   "The first four add up to [#2+d].\n"
   "All five add up to [#3+e].\n"
   "The average is [#4/5]."},
  {op_type::average, 5, form::bare, "j=1..2*M/3 s=3*j a=1..s-1 b=s-a ?b>a x=1..M m=x+j",
   "The average of x, x + {a} and x + {b} is {m}. What is the largest of the three numbers?",
   "The three numbers add up to [m*3].\n"
   "The added parts add up to [a+b].\n"
   "Three times x is [#1-#2].\n"
   "x = [#3/3].\n"
   "The largest number is x + {b} = [#4+b]."},
  {op_type::average, 5, form::bare, "h=1..M/2 d=2*h m=h+1..M",
   "The average of x and y is {m}, and x - y = {d}. What is x * y?",
   "x + y = [m*2].\n"
   "Adding x - y gives 2x = [#1+d].\n"
   "x = [#2/2].\n"
   "y = [#3-d].\n"
   "x * y = [#3*#4]."},

  // ---------------------------------------------------------------- geometry (a triangle's angles make 180 degrees)
  {op_type::geometry, 1, form::word, "l=2..M w=2..M",
   "A rectangle is {l} {unit} long and {w} {unit} wide. What is its area in square {unit}?",
   "The area is [l*w] square {unit}."},
  {op_type::geometry, 1, form::word, "s=2..M",
   "A square has sides of {s} {unit}. What is its perimeter in {unit}?",
   "The perimeter is [s*4] {unit}."},
  {op_type::geometry, 1, form::word, "a=20..min(M,170)",
   "Two angles of a triangle add up to {a} degrees. How many degrees is the third angle?",
   "The third angle is [180-a] degrees."},
  {op_type::geometry, 1, form::word, "w=2..S l=2..M/w a=l*w",
   "A rectangle has an area of {a} square {unit} and a width of {w} {unit}. How long is it?",
   "It is [a/w] {unit} long."},
  {op_type::geometry, 2, form::word, "a=10..min(M,160) b=10..min(M,170-a)",
   "Two angles of a triangle measure {a} degrees and {b} degrees. What is the measure of the third angle in degrees?",
   "The two angles add up to [a+b] degrees.\n"
   "The third angle is [180-#1] degrees."},
  {op_type::geometry, 2, form::word, "l=2..M w=2..M",
   "{P} wants to put a fence around a rectangular garden that is {l} {unit} long and {w} {unit} wide. How many {unit} of fence does {P:he} need?",
   "Half the perimeter is [l+w] {unit}.\n"
   "The fence is [#1*2] {unit} long."},
  {op_type::geometry, 2, form::word, "l=2..S w=2..S h=2..S",
   "A box is {l} {unit} long, {w} {unit} wide and {h} {unit} high. What is its volume in cubic {unit}?",
   "The base has an area of [l*w] square {unit}.\n"
   "The volume is [#1*h] cubic {unit}."},
  {op_type::geometry, 2, form::word, "h=5..min(85,M/2) a=2*h",
   "In an isosceles triangle, the angle between the two equal sides is {a} degrees. How many degrees is each of the other two angles?",
   "The other two angles add up to [180-a] degrees.\n"
   "Each of them is [#1/2] degrees."},
  {op_type::geometry, 2, form::word, "b=1..89",
   "The two base angles of an isosceles triangle are {b} degrees each. How many degrees is the third angle?",
   "The base angles add up to [b*2] degrees.\n"
   "The third angle is [180-#1] degrees."},
  {op_type::geometry, 3, form::word, "l=2..M w=2..M p=1..M c=2..S ?l*w-p>=2",
   "A rectangular garden is {l} {unit} long and {w} {unit} wide. A path covers {p} square {unit} of it, and the rest is covered with grass seed that costs ${c} per square {unit1}. How much does the grass seed cost?",
   "The garden has an area of [l*w] square {unit}.\n"
   "The grass covers [#1-p] square {unit}.\n"
   "The seed costs $[#2*c]."},
  {op_type::geometry, 3, form::word, "d=2..S k=2..M t=d*k l=2..t-2 w=t-l",
   "A rectangular field is {l} {unit} long and {w} {unit} wide. Posts are placed around its edge, one every {d} {unit}. How many posts are needed?",
   "Half the perimeter is [l+w] {unit}.\n"
   "The perimeter is [#1*2] {unit}.\n"
   "The number of posts is [#2/d]."},
  {op_type::geometry, 3, form::word, "l=2..M w=2..M c=2..S g=2..M",
   "A rectangular yard is {l} {unit} long and {w} {unit} wide. Fencing costs ${c} per {unit1}, and a gate costs ${g}. How much do the fence and the gate cost together?",
   "Half the perimeter is [l+w] {unit}.\n"
   "The perimeter is [#1*2] {unit}.\n"
   "The fencing costs $[#2*c].\n"
   "With the gate, the cost is $[#3+g]."},
  {op_type::geometry, 4, form::word, "l=2..M w=2..M p=2..S",
   "A rectangular pool is {l} {unit} long and {w} {unit} wide. A path {p} {unit} wide goes all the way around it. What is the area of the path in square {unit}?",
   "The path adds [p*2] {unit} to both the length and the width.\n"
   "The outer length is [l+#1] {unit}.\n"
   "The outer width is [w+#1] {unit}.\n"
   "The outer area is [#2*#3] square {unit}.\n"
   "The pool's area is [l*w] square {unit}.\n"
   "The path's area is [#4-#5] square {unit}."},
  {op_type::geometry, 4, form::word, "t=2..4 a=2..S i=1..S b=t*i c=2..S j=1..S d=t*j e=2..S",
   "An L-shaped floor is made of two rectangles, one {a} {unit} by {b} {unit} and the other {c} {unit} by {d} {unit}. Each tile covers {t} square {unit} and costs ${e}. How much do the tiles for the whole floor cost?",
   "The first part has an area of [a*b] square {unit}.\n"
   "The second part has an area of [c*d] square {unit}.\n"
   "The floor has an area of [#1+#2] square {unit}.\n"
   "It needs [#3/t] tiles.\n"
   "The tiles cost $[#4*e]."},
  {op_type::geometry, 4, form::word, "a=10..min(M,80) b=1..min(M,170-2*a)",
   "In a triangle, angle A is {a} degrees, and angle B is {b} degrees larger than angle A. The exterior angle at C makes a straight line with angle C. How many degrees larger is the exterior angle at C than angle B?",
   "Angle B is [a+b] degrees.\n"
   "Angles A and B add up to [a+#1] degrees.\n"
   "Angle C is [180-#2] degrees.\n"
   "The exterior angle at C is [180-#3] degrees.\n"
   "It is [#4-#1] degrees larger than angle B."},
  {op_type::geometry, 5, form::word, "k=2..5 w=2..M/(2*k+2) p=2*(k+1)*w",
   "The length of a rectangle is {k} times its width, and its perimeter is {p} {unit}. What is its area in square {unit}?",
   "Half the perimeter is [p/2] {unit}.\n"
   "That is [k+1] widths.\n"
   "The width is [#1/#2] {unit}.\n"
   "The length is [#3*k] {unit}.\n"
   "The area is [#3*#4] square {unit}."},
  {op_type::geometry, 5, form::word, "h=2..M l=1..min(M,2*h-1) w=2*h-l ?l!=w",
   "A square has the same perimeter as a rectangle that is {l} {unit} long and {w} {unit} wide. How many square {unit} larger is the square's area than the rectangle's?",
   "Half the rectangle's perimeter is [l+w] {unit}.\n"
   "The perimeter is [#1*2] {unit}.\n"
   "The square's side is [#2/4] {unit}.\n"
   "The square's area is [#3*#3] square {unit}.\n"
   "The rectangle's area is [l*w] square {unit}.\n"
   "The square's area is larger by [#4-#5] square {unit}."},
  {op_type::geometry, 5, form::bare, "k=2..4 x=5..176/(k+2) s=180-(k+2)*x a=1..min(M,s-1) d=s-a",
   "The angles of a triangle are x, {k}x + {a} and x + {d} degrees. How many degrees is the angle {k}x + {a}?",
   "The coefficients of x add up to [k+2].\n"
   "The constants add up to [a+d] degrees.\n"
   "The x's make [180-#2] degrees.\n"
   "x = [#3/#1] degrees.\n"
   "{k}x = [#4*k] degrees.\n"
   "{k}x + {a} = [#5+a] degrees."},
  {op_type::geometry, 5, form::bare, "k=2..4 x=180/(2*k+1)+1..179/(k+2) d=180-(k+2)*x",
   "The angles of a triangle are x, {k}x and x + {d} degrees. How many degrees larger is the angle {k}x than the angle x + {d}?",
   "The coefficients of x add up to [k+2].\n"
   "Those x's make [180-d] degrees.\n"
   "x = [#2/#1] degrees.\n"
   "{k}x = [#3*k] degrees.\n"
   "x + {d} = [#3+d] degrees.\n"
   "The difference is [#4-#5] degrees."},

  // ---------------------------------------------------------------- probability (expected counts "out of n", or an integer percent)
  {op_type::probability, 1, form::word, "j=1..M/2 n=2*j",
   "{P} tosses a fair coin {n} times. How many heads should {P:he} expect?",
   "{P:He} should expect [n/2] heads."},
  {op_type::probability, 1, form::word, "j=2..M/6 n=6*j",
   "{P} rolls a fair six-sided die {n} times. How many times should {P:he} expect to roll a six?",
   "{P:He} should expect a six about [n/6] times."},
  {op_type::probability, 1, form::word, "k=2..S j=2..M/k n=k*j",
   "The chance of winning a game is 1 in {k}. If {P} plays {n} games, how many games would {P:he} expect to win?",
   "{P} would expect to win [n/k] games."},
  {op_type::probability, 2, form::word, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u n=u*j ?n*p/100>=2",
   "The chance of rain on any day is {p}%. On how many of the next {n} days would you expect rain?",
   "{n} times {p} is [n*p].\n"
   "Dividing by 100, you would expect rain on [#1/100] days."},
  {op_type::probability, 2, form::word, "j=1..M/6 n=6*j",
   "{P} rolls a fair six-sided die {n} times. How many times should {P:he} expect a number greater than four?",
   "Each number would come up about [n/6] times.\n"
   "Two numbers are greater than four, so {P:he} should expect [#1*2] of them."},
  {op_type::probability, 2, form::word, "j=1..M/6 n=6*j",
   "{P} rolls a fair six-sided die {n} times. How many times should {P:he} expect an even number?",
   "Each number would come up about [n/6] times.\n"
   "Three numbers are even, so {P:he} should expect [#1*3] of them."},
  {op_type::probability, 2, form::word, "k=3..S c=2..k-1 j=1..M/k n=k*j",
   "A spinner has {k} equal sections, and {c} of them are red. If it is spun {n} times, how many times would you expect it to land on red?",
   "Each section would come up about [n/k] times.\n"
   "You would expect red [#1*c] times."},
  {op_type::probability, 2, form::bare, "t=2|4|5|10|20|25|50 r=1..t-1",
   "What is {r} out of {t} as a percent?",
   "{r} times 100 is [r*100].\n"
   "Dividing by {t} gives [#1/t]%."},
  {op_type::probability, 2, form::bare, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u n=u*j",
   "An event has probability {p}%. In how many of {n} trials would you expect it?",
   "{n} times {p} is [n*p].\n"
   "Dividing by 100 gives [#1/100]."},
  {op_type::probability, 3, form::word, "r=2..M b=2..M t=r+b j=1..M/t n=t*j",
   "A bag has {r} red marbles and {b} blue marbles. {P} draws a marble at random {n} times, putting it back each time. How many times would {P:he} expect to draw a red marble?",
   "There are [r+b] marbles.\n"
   "Each marble would be drawn about [n/#1] times.\n"
   "{P} would expect to draw red [#2*r] times."},
  {op_type::probability, 3, form::word, "t=4|5|10|20|25|50|100 r=1..t-2 g=1..t-r-1 b=t-r-g",
   "{P} has a bag with {r} red, {g} green and {b} blue marbles. What is the probability that {P:he} draws a red marble, as a percent?",
   "Red and green make [r+g] marbles.\n"
   "There are [#1+b] marbles in all.\n"
   "{r} times 100 is [r*100].\n"
   "The probability is [#3/#2]%."},
  {op_type::probability, 3, form::word, "i=1..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u n=u*j",
   "The chance of rain on any day is {p}%. On how many of the next {n} days would you expect no rain?",
   "{n} times {p} is [n*p].\n"
   "Dividing by 100, you would expect rain on [#1/100] days.\n"
   "You would expect no rain on [n-#2] days."},
  {op_type::probability, 4, form::word, "a=2..S b=2..S t=a+b i=1..M/t n=t*i u=3..S c=2..u-1 k=1..M/u m=u*k",
   "Box A has {a} red and {b} blue balls. Box B has {u} balls, and {c} of them are red. {P} draws a ball from box A {n} times and from box B {m} times, putting the ball back each time. How many red balls would {P:he} expect to draw in all?",
   "Box A has [a+b] balls.\n"
   "Each ball in box A would come up about [n/#1] times.\n"
   "From box A, {P:he} would expect [#2*a] red balls.\n"
   "Each ball in box B would come up about [m/u] times.\n"
   "From box B, {P:he} would expect [#4*c] red balls.\n"
   "In all, {P:he} would expect [#3+#5] red balls."},
  {op_type::probability, 4, form::word, "i=10..min(19,M/5) p=5*i u=100/gcd(p,100) j=1..M/u n=u*j w=3..S l=2..w-1 ?n*p/100*w>(n-n*p/100)*l",
   "{P} wins {p}% of the games {P:he} plays. {P:He} plays {n} games. Each win earns {w} points and each loss costs {l} points. How many points does {P:he} end with?",
   "{n} times {p} is [n*p].\n"
   "Dividing by 100, {P:he} wins [#1/100] games.\n"
   "{P:He} loses [n-#2] games.\n"
   "The wins earn [#2*w] points.\n"
   "The losses cost [#3*l] points.\n"
   "{P:He} ends with [#4-#5] points."},
  {op_type::probability, 5, form::word, "u=1..4 v=1..4 ?100%(u+v)==0 p=100*u/(u+v) i=1..M/v b=v*i k=2..M/((u+v)*i) n=(u+v)*i*k",
   "A bag has some red marbles and {b} blue marbles. The probability of drawing a red marble is {p}%. {P} draws a marble {n} times, putting it back each time. How many red marbles would {P:he} expect to draw?",
   "Blue marbles make up [100-p]% of the bag.\n"
   "{b} times {p} is [b*p].\n"
   "There are [#2/#1] red marbles.\n"
   "There are [#3+b] marbles in all.\n"
   "Each marble would be drawn about [n/#4] times.\n"
   "{P} would expect [#5*#3] red marbles."},
  {op_type::probability, 5, form::bare, "p=20|25|50|75|80 q=20|25|50|75|80 u=100/gcd(100-p,100) r=(100-p)/gcd(100-p,100) v=100/gcd(r*(100-q),100) k=1..M/(u*v) n=u*v*k",
   "Events A and B are independent. A happens with probability {p}% and B with probability {q}%. In how many of {n} trials would you expect at least one of them to happen?",
   "A fails with probability [100-p]%.\n"
   "B fails with probability [100-q]%.\n"
   "{n} times the first is [n*#1].\n"
   "Dividing by 100, A fails in [#3/100] trials.\n"
   "Times the second, that is [#4*#2].\n"
   "Dividing by 100, neither happens in [#5/100] trials.\n"
   "At least one happens in [n-#6] trials."},

  {op_type::probability, 5, form::word, "k=3..S x=1..M b=x*(k-1) t=x*k j=1..M/t n=t*j",
   "A bag has some red marbles and {b} blue marbles. The chance of drawing a red marble is 1 in {k}. {P} draws a marble {n} times, putting it back each time. How many red marbles would {P:he} expect to draw?",
   "For each red marble there are [k-1] blue marbles.\n"
   "There are [b/#1] red marbles.\n"
   "There are [#2+b] marbles in all.\n"
   "Each marble would be drawn about [n/#3] times.\n"
   "{P} would expect [#4*#2] red marbles."},

  // ---------------------------------------------------------------- comparison and if-then
  {op_type::comparison, 1, form::word, "a=2..M b=2..M ?(a-b)*(a-b)>=4",
   "{P} has {a} {items} and {Q} has {b} {items}. Who has more {items}, and how many more?",
   "?a>b {P} has more, [a-b] more {items}.\n"
   "?b>a {Q} has more, [b-a] more {items}."},
  {op_type::comparison, 1, form::word, "x=4..M t=2..M c=2..x-2 d=2..M ?x!=t",
   "{P} has {x} {items}. If {P:he} has more than {t}, {P:he} gives {c} to {Q}; otherwise, {P:he} buys {d} more. How many {items} does {P} have after that?",
   "?x>t {x} is more than {t}, so {P:he} gives away {c} and has [x-c] {items}.\n"
   "?x<t {x} is not more than {t}, so {P:he} buys {d} and has [x+d] {items}."},
  {op_type::comparison, 1, form::bare, "a=2..M b=2..M ?a!=b",
   "Which is larger, {a} or {b}, and by how much?",
   "?a>b {a} is larger, by [a-b].\n"
   "?b>a {b} is larger, by [b-a]."},
  {op_type::comparison, 1, form::bare, "x=2..M t=2..M c=2..S d=2..M ?x!=t",
   "Let x = {x}. If x > {t}, then y = x * {c}; otherwise y = x + {d}. What is y?",
   "?x>t Since {x} > {t}, y = [x*c].\n"
   "?x<t Since {x} < {t}, y = [x+d]."},
  {op_type::comparison, 2, form::word, "a=2..M b=2..M c=2..M ?(b+a-c)*(b+a-c)>=4",
   "{Q} has {a} more {items} than {P}, and {P} has {b} {items}. {R} has {c} {items}. Who has more {items}, {Q} or {R}, and how many more?",
   "{Q} has [b+a] {items}.\n"
   "?b+a>c {Q} has more, [#1-c] more {items}.\n"
   "?b+a<c {R} has more, [c-#1] more {items}."},
  {op_type::comparison, 2, form::bare, "a=2..S b=2..M t=2..M c=2..M d=2..M ?a*b!=t ?a*b>=c",
   "Let x = {a} * {b}. If x > {t}, subtract {c} from x; otherwise add {d} to x. What is the result?",
   "x = [a*b].\n"
   "?a*b>t Since x > {t}, the result is [#1-c].\n"
   "?a*b<t Since x < {t}, the result is [#1+d]."},
  {op_type::comparison, 2, form::word, "a=2..S b=2..M c=2..M ?(a*b-c)*(a*b-c)>=4",
   "Store A sells {a} packs of {b} {items}. Store B sells {c} single {items}. Which store sells more {items}, and how many more?",
   "Store A sells [a*b] {items}.\n"
   "?a*b>c Store A sells [#1-c] more {items}.\n"
   "?a*b<c Store B sells [c-#1] more {items}."},
  {op_type::comparison, 3, form::word, "a=2..S b=2..M c=2..S d=2..M ?(a*b-c*d)*(a*b-c*d)>=4",
   "Store A sells {a} packs of {b} {items}. Store B sells {c} packs of {d} {items}. Which store sells more {items}, and how many more?",
   "Store A sells [a*b] {items}.\n"
   "Store B sells [c*d] {items}.\n"
   "?a*b>c*d Store A sells [#1-#2] more {items}.\n"
   "?a*b<c*d Store B sells [#2-#1] more {items}."},
  {op_type::comparison, 3, form::word, "a=2..S x=2..M/a p=a*x b=2..S y=2..M/b q=b*y ?x!=y",
   "Shop A sells {a} pens for ${p}. Shop B sells {b} pens for ${q}. Which shop sells pens more cheaply, and by how many dollars per pen?",
   "At shop A a pen costs $[p/a].\n"
   "At shop B a pen costs $[q/b].\n"
   "?x<y Shop A is cheaper by $[#2-#1] per pen.\n"
   "?x>y Shop B is cheaper by $[#1-#2] per pen."},
  {op_type::comparison, 3, form::word, "a=2..S b=2..M c=2..M t=2..M f=2..4 d=2..M e=2..M x=a*b-c ?x>=2 ?x!=t ?x-d>=1 y=x-d*(x>t)+e*(x<t) ?y>=f ?y%f==0",
   "{P} buys {a} {boxes} of {items} with {b} in each and gives {c} {items} to {Q}. If {P} has more than {t} {items} left, {P:he} sells {d} of them; otherwise {P:he} buys {e} more. Then {P:he} shares all {P:his} {items} equally among {f} friends. How many {items} does each friend get?",
   "{P} buys [a*b] {items}.\n"
   "{P} has [#1-c] {items} left.\n"
   "?x>t That is more than {t}, so {P:he} sells {d} and has [#2-d] {items}.\n"
   "?x<t That is not more than {t}, so {P:he} buys {e} and has [#2+e] {items}.\n"
   "Each friend gets [#3/f] {items}."},
  {op_type::comparison, 3, form::bare, "a=2..S b=2..M c=2..S d=2..M ?a*b!=c*d",
   "Which is larger, {a} * {b} or {c} * {d}, and by how much?",
   "{a} * {b} = [a*b].\n"
   "{c} * {d} = [c*d].\n"
   "?a*b>c*d {a} * {b} is larger, by [#1-#2].\n"
   "?a*b<c*d {c} * {d} is larger, by [#2-#1]."},
  {op_type::comparison, 4, form::word, "a=2..S b=2..M c=2..S d=2..M f=2..S x=a*b+c*d y=f*d ?(x-y)*(x-y)>=4",
   "Pens cost ${b} each and notebooks cost ${d} each. {P} buys {a} pens and {c} notebooks. {Q} buys {f} notebooks. Who spends more, and how much more?",
   "{P}'s pens cost $[a*b].\n"
   "{P}'s notebooks cost $[c*d].\n"
   "{P} spends $[#1+#2].\n"
   "{Q} spends $[f*d].\n"
   "?x>y {P} spends $[#3-#4] more.\n"
   "?x<y {Q} spends $[#4-#3] more."},
  {op_type::comparison, 4, form::word, "a=2..M b=2..M c=2..M n=4..S m=2..n-2 x=a*m+(n-m)*b y=c*n ?(x-y)*(x-y)>=4",
   "Phone plan A costs ${a} a month for the first {m} months and ${b} a month after that. Plan B costs ${c} every month. Over {n} months, which plan is cheaper, and by how much?",
   "Plan A costs $[a*m] for the first {m} months.\n"
   "Plan A has [n-m] more months.\n"
   "Those months cost $[#2*b].\n"
   "Plan A costs $[#1+#3] in all.\n"
   "Plan B costs $[c*n] in all.\n"
   "?x<y Plan A is cheaper by $[#5-#4].\n"
   "?x>y Plan B is cheaper by $[#4-#5]."},
  {op_type::comparison, 5, form::bare, "b=2..M d=2..M a=2..S c=1..M e=2..S f=1..M y=b+d x=a*y-c z=e*(y-f) ?y>f ?x>=1 ?x!=z",
   "Let y = {b} + {d}, x = {a}y - {c}, and z = {e}(y - {f}). Which is larger, x or z, and by how much?",
   "y = [b+d].\n"
   "{a}y = [a*#1].\n"
   "x = [#2-c].\n"
   "y - {f} = [#1-f].\n"
   "z = [e*#4].\n"
   "?x>z x is larger, by [#3-#5].\n"
   "?x<z z is larger, by [#5-#3]."},
  {op_type::comparison, 5, form::bare, "a=2..S x=1..M/a b=1..M c=a*x+b t=1..M ?x!=t",
   "Solve {a}x + {b} = {c}. If x is greater than {t}, let y = x - {t}; otherwise let y = {t} - x. What is {a}y + x?",
   "{a}x = [c-b].\n"
   "x = [#1/a].\n"
   "?x>t Since x > {t}, y = [#2-t].\n"
   "?x<t Since x < {t}, y = [t-#2].\n"
   "{a}y = [a*#3].\n"
   "{a}y + x = [#4+#2]."},
};
// clang-format on

inline bool is_arithmetic(op_type t) {
  return t == op_type::addition || t == op_type::subtraction || t == op_type::multiplication ||
         t == op_type::division || t == op_type::mixed;
}

// The templates a (type, level, form) draws from. Mixed level 1 borrows the level-1 word
// templates of the four operations: one step holds one operation.
inline std::vector<const problem_template*> template_pool(op_type type, int level, form kind) {
  std::vector<const problem_template*> pool;
  for (const problem_template& t : templates)
    if (t.level == level && t.kind == kind &&
        (t.type == type || (type == op_type::mixed && level == 1 && t.type != op_type::mixed && is_arithmetic(t.type))))
      pool.push_back(&t);
  return pool;
}

// ---------------------------------------------------------------------------
// Bare arithmetic expressions ("What is (12 + 3) * 4?") for the four operations and mixed,
// levels 1-4: a random expression tree with one node per step, its values drawn bottom-up
// so that every node is a positive integer, every division exact (a divisor is always a
// number, never a sub-expression) and every multiplication has a small factor unless both
// sides are numbers. Steps are the nodes in evaluation order (left operand first); the
// printed expression has parentheses wherever that order differs from left-to-right
// precedence, so reading it normally gives the same steps.
// ---------------------------------------------------------------------------

class expression_builder {
 public:
  expression_builder(op_type type, std::mt19937_64& rng, std::int64_t max_operand)
      : type_(type), rng_(rng), max_(max_operand), small_(std::min(max_operand, small_factor)) {}

  // A tree with `ops` operations; returns the root.
  int grow(int ops, bool root) {
    if (ops == 0) {
      nodes_.push_back({});
      return static_cast<int>(nodes_.size()) - 1;
    }
    const char op = pick_op(root);
    int left, right;
    if (op == '/') {
      left = grow(ops - 1, false);
      right = grow(0, false);
    } else {
      const int k = static_cast<int>(uniform_int(rng_, 0, ops - 1));
      left = grow(k, false);
      right = grow(ops - 1 - k, false);
    }
    const std::int64_t value = combine(op, left, right);
    if (value < 1 || value >= synth_value_limit) throw rejected{};
    nodes_.push_back({op, value, left, right});
    return static_cast<int>(nodes_.size()) - 1;
  }

  std::string print(int i, int parent_prec = 0, bool right_side = false) const {
    const node& n = nodes_[static_cast<std::size_t>(i)];
    if (n.op == 0) return std::to_string(n.value);
    const int prec = n.op == '+' || n.op == '-' ? 1 : 2;
    const std::string s = print(n.left, prec, false) + " " + n.op + " " + print(n.right, prec, true);
    return prec < parent_prec || (right_side && prec == parent_prec) ? "(" + s + ")" : s;
  }

  void emit(int i, std::vector<step>& steps) const {
    const node& n = nodes_[static_cast<std::size_t>(i)];
    if (n.op == 0) return;
    emit(n.left, steps);
    emit(n.right, steps);
    steps.push_back(make_step(n.op, value(n.left), value(n.right)));
  }

 private:
  struct node {
    char op = 0;  // 0: a number
    std::int64_t value = 0;
    int left = -1, right = -1;
  };

  char pick_op(bool root) {
    const auto from = [&](std::string_view ops) { return ops[pick_index(rng_, ops.size())]; };
    switch (type_) {
      case op_type::addition: return '+';
      case op_type::subtraction: return root ? '-' : from("--+");
      case op_type::multiplication: return root ? '*' : from("**+-");
      case op_type::division: return root ? '/' : from("/*+-");
      case op_type::mixed: return from("+-*/");
      default: throw error("no bare expressions for type " + std::string(op_type_name(type_)));
    }
  }

  bool is_number(int i) const { return nodes_[static_cast<std::size_t>(i)].op == 0; }
  std::int64_t value(int i) const { return nodes_[static_cast<std::size_t>(i)].value; }
  void set(int i, std::int64_t lo, std::int64_t hi) {
    if (lo > hi) throw rejected{};
    nodes_[static_cast<std::size_t>(i)].value = uniform_int(rng_, lo, hi);
  }

  // Draws the numbers among the two children and returns the node's value.
  std::int64_t combine(char op, int& left, int& right) {
    switch (op) {
      case '+':
      case '-':
        if (is_number(left)) set(left, 2, max_);
        if (is_number(right)) set(right, 2, max_);
        if (op == '+') return value(left) + value(right);
        if (value(left) < value(right)) std::swap(left, right);
        return value(left) - value(right);
      case '*':
        if (is_number(left) && is_number(right)) {
          const bool left_small = uniform_int(rng_, 0, 1) == 0;
          set(left, 2, left_small ? small_ : max_);
          set(right, 2, left_small ? max_ : small_);
        } else {
          if (is_number(left)) set(left, 2, small_);
          if (is_number(right)) set(right, 2, small_);
        }
        return value(left) * value(right);
      case '/': {
        if (is_number(left)) {
          set(right, 2, small_);
          set(left, 2, max_ / value(right));
          nodes_[static_cast<std::size_t>(left)].value *= value(right);
          return value(left) / value(right);
        }
        std::vector<std::int64_t> divisors;
        for (std::int64_t d = 2; d <= small_; ++d)
          if (value(left) % d == 0) divisors.push_back(d);
        if (divisors.empty()) throw rejected{};
        nodes_[static_cast<std::size_t>(right)].value = divisors[pick_index(rng_, divisors.size())];
        return value(left) / value(right);
      }
      default: throw error(std::string("unknown operation '") + op + "'");
    }
  }

  op_type type_;
  std::mt19937_64& rng_;
  std::int64_t max_, small_;
  std::vector<node> nodes_;
};

inline problem bare_expression(op_type type, int level, std::mt19937_64& rng, std::int64_t max_operand) {
  constexpr std::string_view phrasings[] = {"What is {}?", "Calculate {}.", "Compute {}.", "Evaluate {}.",
                                            "Find the value of {}."};
  const level_range range = level_steps(level);
  const int ops = static_cast<int>(uniform_int(rng, range.min_steps, range.max_steps));
  expression_builder b(type, rng, max_operand);
  const int root = b.grow(ops, true);
  problem p{{}, {}, type, level, {}, 0};
  b.emit(root, p.steps);
  if (type == op_type::mixed && ops >= 2 &&
      std::all_of(p.steps.begin(), p.steps.end(), [&](const step& s) { return s.op == p.steps[0].op; }))
    throw rejected{};  // mixed means at least two different operations
  std::string_view phrasing = phrasings[pick_index(rng, std::size(phrasings))];
  const std::size_t hole = phrasing.find("{}");
  p.question = std::string(phrasing.substr(0, hole)) + b.print(root) + std::string(phrasing.substr(hole + 2));
  std::vector<std::string> lines;
  for (const step& s : p.steps) lines.push_back(annotation(s));
  p.final_answer = p.steps.back().result;
  p.answer = finish_answer(lines, p.final_answer);
  return p;
}

// One attempt at a problem in the given form; throws rejected when the draw breaks a rule.
// Each attempt picks its template afresh, so a template that cannot work at this max_operand
// does not block the others (templates that reject often are picked a little less often).
inline problem attempt(op_type type, int level, bool bare, std::mt19937_64& rng, std::int64_t max_operand) {
  if (bare && is_arithmetic(type) && level <= 4) return bare_expression(type, level, rng, max_operand);
  auto pool = template_pool(type, level, bare ? form::bare : form::word);
  if (pool.empty()) pool = template_pool(type, level, bare ? form::word : form::bare);
  if (pool.empty()) {
    if (is_arithmetic(type) && level <= 4) return bare_expression(type, level, rng, max_operand);
    throw error("no synth templates for " + std::string(op_type_name(type)) + " level " + std::to_string(level));
  }
  return instantiate(*pool[pick_index(rng, pool.size())], type, level, rng, max_operand);
}

}  // namespace detail

// One problem of the given type and level; max_operand 0 means default_max_operand(level).
// Draws until a draw satisfies every rule (see the top of this file).
inline problem make_problem(op_type type, int level, std::mt19937_64& rng, std::int64_t max_operand) {
  op_type_name(type);  // validates
  const std::int64_t m = max_operand == 0 ? default_max_operand(level) : max_operand;
  check(m >= synth_min_operand && m <= synth_max_operand,
        "max_operand " + std::to_string(max_operand) + " is outside [" + std::to_string(synth_min_operand) + ", " +
            std::to_string(synth_max_operand) + "]");
  // The form is drawn once, outside the retries, so that bare_percent holds whatever the
  // forms' rejection rates are; only after form_patience failures (a form that cannot work
  // at this max_operand) do the attempts alternate between the two forms.
  const bool bare = detail::uniform_int(rng, 0, 99) < detail::bare_percent;
  for (int i = 0; i < detail::max_attempts; ++i) {
    try {
      return detail::attempt(type, level, i < detail::form_patience || i % 2 == 0 ? bare : !bare, rng, m);
    } catch (const detail::rejected&) {
    }
  }
  throw error("could not generate a " + std::string(op_type_name(type)) + " problem of level " +
              std::to_string(level) + " with max_operand " + std::to_string(m));
}

// n problems cycling through types x levels (type-major: each type's levels in turn, then the
// next type), so each combination gets n / (types * levels) problems, the first n % (types *
// levels) combinations one more. Problem i is drawn from problem_seed(seed, i, type, level).
inline std::vector<problem> make_problems(std::size_t n, const synth_options& o) {
  const std::vector<op_type> types = o.types.empty() ? std::vector<op_type>(all_op_types.begin(), all_op_types.end()) : o.types;
  const std::vector<int> levels = o.levels.empty() ? std::vector<int>{1, 2, 3, 4, 5} : o.levels;
  for (int level : levels) level_steps(level);  // validates
  check(n <= synth_max_problems, "cannot make " + std::to_string(n) + " problems: at most " +
                                     std::to_string(synth_max_problems) + " at once");
  std::vector<problem> out;
  out.reserve(n);
  const std::size_t combos = types.size() * levels.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % combos;
    const op_type type = types[c / levels.size()];
    const int level = levels[c % levels.size()];
    std::mt19937_64 rng(problem_seed(o.seed, i, type, level));
    out.push_back(make_problem(type, level, rng, o.max_operand));
  }
  return out;
}

// Throws qmr::error naming the field when a problem is inconsistent: a level outside 1-5 or a
// step count outside level_steps(), a wrong or negative step, an answer whose lines do not
// carry the steps' annotations in order, or a final answer other than the last step's result.
inline void check_problem(const problem& p) {
  const auto fail = [](const char* field, const std::string& what) {
    throw error(what, error_context{{}, {}, field, std::nullopt});
  };
  if (p.question.empty()) fail("question", "is empty");
  op_type_name(p.type);
  if (p.level < 1 || p.level > 5) fail("level", std::to_string(p.level) + " is not one of 1, 2, 3, 4, 5");
  const level_range range = level_steps(p.level);
  const auto n = static_cast<int>(p.steps.size());
  if (n < range.min_steps || n > range.max_steps)
    fail("steps", std::to_string(n) + " steps; level " + std::to_string(p.level) + " has " +
                      std::to_string(range.min_steps) + " to " + std::to_string(range.max_steps));
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    const step& s = p.steps[i];
    std::int64_t r = 0;
    const std::string where = "step " + std::to_string(i + 1) + " ";
    // Ranges first: they also keep apply_op's arithmetic far from overflow on untrusted input.
    if (s.a < 0 || s.b < 0 || s.result < 0 || s.a >= synth_value_limit || s.b >= synth_value_limit ||
        s.result >= synth_value_limit)
      fail("steps", where + step_text(s) + " is outside [0, " + std::to_string(synth_value_limit) + ")");
    if (!apply_op(s.op, s.a, s.b, r)) fail("steps", where + "is not an exact +, -, * or /");
    if (r != s.result) fail("steps", where + "says " + step_text(s) + " but the result is " + std::to_string(r));
  }
  if (p.final_answer != p.steps.back().result)
    fail("final", std::to_string(p.final_answer) + " is not the last step's result " +
                      std::to_string(p.steps.back().result));
  const auto lines = detail::split(p.answer, '\n');
  if (lines.size() != p.steps.size() + 1)
    fail("answer", "has " + std::to_string(lines.size()) + " lines for " + std::to_string(p.steps.size()) + " steps");
  if (lines.back() != "#### " + std::to_string(p.final_answer))
    fail("answer", "the last line is not '#### " + std::to_string(p.final_answer) + "'");
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    const std::string_view line = lines[i];
    const std::string want = detail::annotation(p.steps[i]);
    const std::size_t at = line.find(want);
    const std::size_t end = at + want.size();
    if (at == std::string_view::npos || line.find("<<", line.find("<<") + 2) != std::string_view::npos ||
        (end < line.size() && detail::is_dec_digit(line[end])) || (at > 0 && detail::is_dec_digit(line[at - 1])))
      fail("answer", "line " + std::to_string(i + 1) + " does not carry exactly the step " + want);
  }
}

inline nlohmann::json to_json(const problem& p) {
  nlohmann::json steps = nlohmann::json::array();
  for (const step& s : p.steps) steps.push_back({{"op", std::string(1, s.op)}, {"a", s.a}, {"b", s.b}, {"result", s.result}});
  return {{"question", p.question}, {"answer", p.answer}, {"type", std::string(op_type_name(p.type))},
          {"level", p.level},       {"steps", steps},      {"final", p.final_answer}};
}

// The inverse of to_json(); validates the fields' types and then the problem (check_problem()).
inline problem from_json(const nlohmann::json& j) {
  const auto field = [&](const char* name, bool (nlohmann::json::*is)() const noexcept) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(name) || !(j[name].*is)())
      throw error("missing or of the wrong type", error_context{{}, {}, name, std::nullopt});
    return j[name];
  };
  problem p{};
  p.question = field("question", &nlohmann::json::is_string).get<std::string>();
  p.answer = field("answer", &nlohmann::json::is_string).get<std::string>();
  try {
    p.type = parse_op_type(field("type", &nlohmann::json::is_string).get<std::string>());
  } catch (const error& e) {
    throw error(e.message(), error_context{{}, {}, "type", std::nullopt});
  }
  // Read wide: get<int>() kept the low 32 bits, so level 4294967297 passed as level 1.
  const auto level = field("level", &nlohmann::json::is_number_integer).get<std::int64_t>();
  if (level < 1 || level > 5)
    throw error(std::to_string(level) + " is not one of 1, 2, 3, 4, 5", error_context{{}, {}, "level", std::nullopt});
  p.level = static_cast<int>(level);
  p.final_answer = field("final", &nlohmann::json::is_number_integer).get<std::int64_t>();
  for (const nlohmann::json& s : field("steps", &nlohmann::json::is_array)) {
    const auto bad = [] { throw error("each step must be {\"op\", \"a\", \"b\", \"result\"}", error_context{{}, {}, "steps", std::nullopt}); };
    if (!s.is_object()) bad();
    for (const char* k : {"a", "b", "result"})
      if (!s.contains(k) || !s[k].is_number_integer()) bad();
    if (!s.contains("op") || !s["op"].is_string() || s["op"].get<std::string>().size() != 1) bad();
    p.steps.push_back({s["op"].get<std::string>()[0], s["a"].get<std::int64_t>(), s["b"].get<std::int64_t>(),
                       s["result"].get<std::int64_t>()});
  }
  if (p.steps.empty()) throw error("has no steps", error_context{{}, {}, "steps", std::nullopt});
  check_problem(p);
  return p;
}

}  // namespace qmr::eval
