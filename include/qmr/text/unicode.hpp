// UTF-8 decoding and encoding, the Unicode properties the tokenizers' regexes use, and NFC.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "unicode_tables.hpp"

namespace qmr::text {

// Unicode version: that of tables::unicode_version (Python's unicodedata at generation time,
// 14.0.0 for Python 3.11). Hugging Face tokenizers use the Unicode tables of Oniguruma (\p{L},
// \p{N}, \s) and of the Rust `unicode-normalization` crate (NFC), which may be a version or
// two newer: the only code points that can tokenize differently are those assigned (or given
// decompositions) after our version, i.e. characters almost no text contains yet.

inline constexpr char32_t replacement_character = 0xFFFD;
inline constexpr char32_t max_code_point = 0x10FFFF;

// ---- UTF-8 ------------------------------------------------------------------------------

// Decodes the code point starting at s[pos] and advances pos past it. An ill-formed sequence
// decodes to U+FFFD and consumes its "maximal subpart" (Unicode 15 §3.9, U+FFFD substitution;
// what Rust's String::from_utf8_lossy and WHATWG do): always at least one byte, never reading
// past s.size(). Precondition: pos < s.size().
inline char32_t decode_utf8(std::string_view s, std::size_t& pos) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  const std::uint8_t b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  std::size_t need = 0;     // continuation bytes
  std::uint8_t lo = 0x80;   // allowed range of the first continuation byte: excludes overlong
  std::uint8_t hi = 0xBF;   // forms, surrogates (ED A0..BF) and code points above U+10FFFF
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {  // a continuation byte, C0/C1 (always overlong) or F5..FF
    ++pos;
    return replacement_character;
  }
  for (std::size_t i = 1; i <= need; ++i) {
    if (pos + i >= s.size()) {
      pos += i;  // truncated at the end: the lead byte and the valid continuations so far
      return replacement_character;
    }
    const std::uint8_t b = byte(pos + i);
    if (b < lo || b > hi) {
      pos += i;  // the offending byte starts the next sequence
      return replacement_character;
    }
    cp = (cp << 6) | (b & 0x3Fu);
    lo = 0x80;
    hi = 0xBF;
  }
  pos += need + 1;
  return cp;
}

// Appends the UTF-8 encoding of cp; surrogates and values above U+10FFFF become U+FFFD.
inline void encode_utf8(char32_t cp, std::string& out) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > max_code_point) cp = replacement_character;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline std::string encode_utf8(char32_t cp) {
  std::string out;
  encode_utf8(cp, out);
  return out;
}

namespace detail {

// True when s[start, end) decoded to U+FFFD because it *is* U+FFFD, not because it was ill-formed.
inline bool is_literal_replacement(std::string_view s, std::size_t start, std::size_t end) noexcept {
  return s.substr(start, end - start) == "\xEF\xBF\xBD";
}

}  // namespace detail

// True when s is well-formed UTF-8.
inline bool is_valid_utf8(std::string_view s) noexcept {
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<std::uint8_t>(s[pos]) < 0x80) {  // ASCII runs are the common case
      ++pos;
      continue;
    }
    const std::size_t start = pos;
    const char32_t cp = decode_utf8(s, pos);
    if (cp == replacement_character && !detail::is_literal_replacement(s, start, pos)) return false;
  }
  return true;
}

// s with every ill-formed sequence replaced by U+FFFD (like Rust's String::from_utf8_lossy).
inline std::string to_valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t pos = 0;
  while (pos < s.size()) encode_utf8(decode_utf8(s, pos), out);
  return out;
}

// The code points of s (ill-formed sequences as U+FFFD).
inline std::u32string to_code_points(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) out += decode_utf8(s, pos);
  return out;
}

inline std::string to_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (const char32_t cp : cps) encode_utf8(cp, out);
  return out;
}

// ---- properties -------------------------------------------------------------------------

namespace detail {

// Binary search in a sorted table of disjoint [first, last] ranges: the index of the range
// holding cp, or N when none does. (Indices, not pointers: GCC's constant evaluator rejects
// pointer comparisons under -fsanitize=undefined.)
template <typename Range, std::size_t N>
constexpr std::size_t find_range(const Range (&table)[N], char32_t cp) noexcept {
  std::size_t lo = 0, hi = N;  // the answer, if any, is the last range with first <= cp
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (table[mid].first <= cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (lo > 0 && cp <= table[lo - 1].last) ? lo - 1 : N;
}

constexpr std::uint8_t properties_slow(char32_t cp) noexcept {
  const std::size_t i = find_range(tables::property_ranges, cp);
  return i < std::size(tables::property_ranges) ? tables::property_ranges[i].props : std::uint8_t{0};
}

// Properties of U+0000..U+00FF, computed at compile time: Latin-1 is most of most text.
inline constexpr std::array<std::uint8_t, 256> latin1_properties = [] {
  std::array<std::uint8_t, 256> t{};
  for (char32_t c = 0; c < 256; ++c) t[c] = properties_slow(c);
  return t;
}();

}  // namespace detail

// The bit set of tables::prop_* that hold for cp.
constexpr std::uint8_t properties(char32_t cp) noexcept {
  return cp < 256 ? detail::latin1_properties[cp] : detail::properties_slow(cp);
}

constexpr bool is_letter(char32_t cp) noexcept { return properties(cp) & tables::prop_letter; }  // \p{L}
constexpr bool is_number(char32_t cp) noexcept { return properties(cp) & tables::prop_number; }  // \p{N}
// \s as Oniguruma and Rust's regex crate define it: the White_Space property.
constexpr bool is_whitespace(char32_t cp) noexcept { return properties(cp) & tables::prop_space; }
// \w as Rust's regex crate defines it (Alphabetic, M, Nd, Pc, Join_Control); Other_Alphabetic
// is approximated (see tools/gen_unicode_tables.py).
constexpr bool is_word_character(char32_t cp) noexcept { return properties(cp) & tables::prop_word; }

// Canonical combining class (0 for starters and unassigned code points).
constexpr std::uint8_t combining_class(char32_t cp) noexcept {
  if (cp < 0x300) return 0;  // the first non-zero class is U+0300
  const std::size_t i = detail::find_range(tables::ccc_ranges, cp);
  return i < std::size(tables::ccc_ranges) ? tables::ccc_ranges[i].ccc : std::uint8_t{0};
}

// ---- NFC --------------------------------------------------------------------------------

namespace detail {

// Hangul syllables are composed and decomposed by arithmetic (Unicode 15 §3.12).
inline constexpr char32_t hangul_s_base = 0xAC00, hangul_l_base = 0x1100, hangul_v_base = 0x1161,
                          hangul_t_base = 0x11A7;
inline constexpr char32_t hangul_l_count = 19, hangul_v_count = 21, hangul_t_count = 28;
inline constexpr char32_t hangul_n_count = hangul_v_count * hangul_t_count;  // 588
inline constexpr char32_t hangul_s_count = hangul_l_count * hangul_n_count;  // 11172

// Appends the full canonical decomposition of cp.
inline void decompose(char32_t cp, std::u32string& out) {
  if (cp >= hangul_s_base && cp < hangul_s_base + hangul_s_count) {
    const char32_t s = cp - hangul_s_base;
    out += static_cast<char32_t>(hangul_l_base + s / hangul_n_count);
    out += static_cast<char32_t>(hangul_v_base + (s % hangul_n_count) / hangul_t_count);
    if (s % hangul_t_count != 0) out += static_cast<char32_t>(hangul_t_base + s % hangul_t_count);
    return;
  }
  const auto* begin = std::begin(tables::decompositions);
  const auto* end = std::end(tables::decompositions);
  const auto* it = std::lower_bound(begin, end, cp, [](const tables::decomposition& d, char32_t c) { return d.cp < c; });
  if (it != end && it->cp == cp) {
    out.append(tables::decomposition_data + it->offset, it->length);
  } else {
    out += cp;
  }
}

// The primary composite of (a, b), or 0 when there is none.
inline char32_t compose_pair(char32_t a, char32_t b) noexcept {
  if (a >= hangul_l_base && a < hangul_l_base + hangul_l_count && b >= hangul_v_base &&
      b < hangul_v_base + hangul_v_count)
    return static_cast<char32_t>(hangul_s_base + ((a - hangul_l_base) * hangul_v_count + (b - hangul_v_base)) * hangul_t_count);
  if (a >= hangul_s_base && a < hangul_s_base + hangul_s_count && (a - hangul_s_base) % hangul_t_count == 0 &&
      b > hangul_t_base && b < hangul_t_base + hangul_t_count)
    return static_cast<char32_t>(a + (b - hangul_t_base));
  const auto* begin = std::begin(tables::compositions);
  const auto* end = std::end(tables::compositions);
  const auto* it = std::lower_bound(begin, end, std::pair{a, b}, [](const tables::composition& c, std::pair<char32_t, char32_t> k) {
    return c.first != k.first ? c.first < k.first : c.second < k.second;
  });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace detail

// True when no code point of s can change under NFC (a quick check that may say false for
// some NFC text, e.g. text with combining marks). Ill-formed UTF-8 is never NFC-stable.
inline bool is_nfc_stable(std::string_view s) noexcept {
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<std::uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const std::size_t start = pos;
    const char32_t cp = decode_utf8(s, pos);
    if (cp == replacement_character && !detail::is_literal_replacement(s, start, pos)) return false;
    if (cp >= 0x300 && (properties(cp) & tables::prop_nfc_unstable)) return false;
  }
  return true;
}

// NFC of a code point sequence: canonical decomposition, canonical ordering, canonical
// composition (Unicode 15 §3.11, UAX #15).
inline std::u32string nfc(std::u32string_view cps) {
  std::u32string buf;
  buf.reserve(cps.size() + 8);
  for (const char32_t cp : cps) detail::decompose(cp, buf);

  // Canonical ordering: a stable sort of each run of non-starters by combining class; runs
  // are short, so insertion sort.
  for (std::size_t i = 1; i < buf.size(); ++i) {
    const std::uint8_t c = combining_class(buf[i]);
    if (c == 0) continue;
    std::size_t j = i;
    const char32_t cp = buf[i];
    while (j > 0 && combining_class(buf[j - 1]) > c) {
      buf[j] = buf[j - 1];
      --j;
    }
    buf[j] = cp;
  }

  // Canonical composition: each character composes with the last starter unless blocked
  // (a character in between with class 0 or with a class >= its own).
  if (buf.empty()) return buf;
  std::size_t starter = 0;
  bool have_starter = combining_class(buf[0]) == 0;
  int last_class = 0;  // class of the last character kept after the starter (0: none kept)
  std::size_t out = 1;
  for (std::size_t i = 1; i < buf.size(); ++i) {
    const char32_t cp = buf[i];
    const int cls = combining_class(cp);
    if (have_starter && (last_class < cls || last_class == 0)) {
      if (const char32_t composite = detail::compose_pair(buf[starter], cp); composite != 0) {
        buf[starter] = composite;
        continue;
      }
    }
    if (cls == 0) {
      starter = out;
      have_starter = true;
    }
    last_class = cls;
    buf[out++] = cp;
  }
  buf.resize(out);
  return buf;
}

// NFC of UTF-8 text (ill-formed sequences become U+FFFD first).
inline std::string nfc(std::string_view s) {
  if (is_nfc_stable(s)) return std::string(s);
  return to_utf8(nfc(std::u32string_view(to_code_points(s))));
}

}  // namespace qmr::text
