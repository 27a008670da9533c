// Answer extraction and normalization exactly as lm-evaluation-harness scores GSM8K (strict "#### N" and flexible last-number), plus the Wilson interval.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace qmr::eval {

namespace detail {
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool in_number_set(char c) { return is_digit(c) || c == '.' || c == ','; }          // [0-9\.\,]
inline bool in_money_set(char c) { return is_digit(c) || c == '.' || c == ',' || c == '$'; }  // [$0-9.,]
}  // namespace detail

// lm-eval's "strict-match": the first match of `#### (\-?[0-9\.\,]+)`, its group.
inline std::optional<std::string> extract_strict(std::string_view text) {
  for (std::size_t at = text.find("#### "); at != std::string_view::npos; at = text.find("#### ", at + 1)) {
    std::size_t i = at + 5;
    const std::size_t start = i;
    if (i < text.size() && text[i] == '-') ++i;
    std::size_t j = i;
    while (j < text.size() && detail::in_number_set(text[j])) ++j;
    if (j > i) return std::string(text.substr(start, j - start));
  }
  return std::nullopt;
}

// lm-eval's "flexible-extract": the last match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`, scanning
// left to right for non-overlapping leftmost matches as Python's re.findall does.
inline std::optional<std::string> extract_flexible(std::string_view text) {
  std::optional<std::string> last;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = 0;  // one past the match, 0 = no match at i
    const std::size_t body = (text[i] == '-') ? i + 1 : i;
    std::size_t k = body;
    while (k < text.size() && detail::in_money_set(text[k])) ++k;
    if (k - body >= 2) {
      end = k;
    } else {
      std::size_t d = body;
      while (d < text.size() && detail::is_digit(text[d])) ++d;
      if (d > body) end = d;
    }
    if (end) {
      last = std::string(text.substr(i, end - i));
      i = end;
    } else {
      ++i;
    }
  }
  return last;
}

// lm-eval's GSM8K exact-match normalization: drop ",", "$", everything up to the last
// "#### ", and one trailing "."; surrounding whitespace is trimmed.
inline std::string normalize_answer(std::string_view s) {
  std::string out(s);
  if (const std::size_t at = out.rfind("#### "); at != std::string::npos) out.erase(0, at + 5);
  std::string kept;
  for (char c : out)
    if (c != ',' && c != '$') kept += c;
  if (!kept.empty() && kept.back() == '.') kept.pop_back();
  const std::size_t b = kept.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return kept.substr(b, kept.find_last_not_of(" \t\r\n") - b + 1);
}

// 95% Wilson score interval of k successes in n trials.
inline std::pair<double, double> wilson_interval(std::size_t k, std::size_t n, double z = 1.959963984540054) {
  if (n == 0) return {0.0, 1.0};
  const double p = static_cast<double>(k) / static_cast<double>(n), nn = static_cast<double>(n);
  const double denom = 1 + z * z / nn;
  const double center = (p + z * z / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

}  // namespace qmr::eval
